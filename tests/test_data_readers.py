"""Each reader on tiny datasets written here, and bad data naming the file."""

import cv2
import numpy as np
import pytest

from fcn_edge.classes import CITYSCAPES_CLASSES, VOC_CLASSES, VOC_PALETTE
from fcn_edge.data import detect_format, open_dataset, read_label_png, write_image, write_label_png
from fcn_edge.data.augment import AugmentConfig, augment
from fcn_edge.data.classfile import write_class_file
from fcn_edge.data.images import IGNORE_COLOUR
from fcn_edge.data.png import read_png_info
from fcn_edge.errors import DataError


def _image(h=12, w=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _mask(h=12, w=16, n=21, seed=0):
    mask = np.random.default_rng(seed).integers(0, n, (h, w)).astype(np.uint8)
    mask[0, :3] = 255
    return mask


def _voc(root, masks, split="val", classes=None, palette=VOC_PALETTE):
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    for name, mask in masks.items():
        write_image(root / "JPEGImages" / f"{name}.jpg", _image(*mask.shape))
        write_label_png(root / "SegmentationClass" / f"{name}.png", mask, palette)
    (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(masks) + "\n")
    if classes:
        write_class_file(root / "classes.txt", classes, palette)
    return root


def test_palette_png_roundtrip_keeps_indices_exactly(tmp_path):
    mask = np.arange(256, dtype=np.uint8).reshape(16, 16) % 21
    mask[0, 0] = 255
    path = write_label_png(tmp_path / "m.png", mask, VOC_PALETTE)
    info = read_png_info(path)
    assert (info.width, info.height, info.colour_type) == (16, 16, 3) and len(info.palette) == 256
    assert (read_label_png(path) == mask).all()


def test_palette_png_written_by_pillow_reads_the_same(tmp_path):
    image_module = pytest.importorskip("PIL.Image")
    mask = _mask()
    img = image_module.fromarray(mask, "P")
    flat = [c for colour in VOC_PALETTE for c in colour] + [0] * (768 - 3 * len(VOC_PALETTE))
    flat[255 * 3 : 255 * 3 + 3] = IGNORE_COLOUR
    img.putpalette(flat)  # entries 21..254 are all black, like many real VOC files: duplicates
    img.save(tmp_path / "pil.png")
    assert (read_label_png(tmp_path / "pil.png") == mask).all()


def test_voc_reader(tmp_path):
    masks = {"2007_000032": _mask(seed=1), "2007_000039": _mask(10, 14, seed=2)}
    ds = open_dataset(_voc(tmp_path / "VOC2012", masks))
    assert ds.format_name == "voc" and ds.split == "val" and len(ds) == 2
    assert ds.class_names == VOC_CLASSES and ds.dataset_key == "voc"
    sample = ds[1]
    assert sample.name == "2007_000039" and sample.image.shape == (10, 14, 3)
    assert (sample.mask == masks["2007_000039"]).all()
    # a VOCdevkit folder holding one VOC20xx folder resolves to it
    assert len(open_dataset(tmp_path, "val")) == 2


def test_voc_colour_masks_map_through_the_palette(tmp_path):
    root = _voc(tmp_path / "voc", {"a": _mask(seed=3)})
    mask = _mask(seed=3)
    lut = np.array(list(VOC_PALETTE) + [IGNORE_COLOUR] * (256 - len(VOC_PALETTE)), np.uint8)
    cv2.imwrite(str(root / "SegmentationClass" / "a.png"), lut[mask][..., ::-1])  # RGB colour PNG
    assert (open_dataset(root)[0].mask == mask).all()


def test_voc_with_its_own_class_list(tmp_path):
    classes, palette = ("bg", "thing", "stuff"), ((0, 0, 0), (200, 10, 10), (10, 200, 10))
    root = _voc(tmp_path / "voc", {"a": _mask(n=3)}, classes=classes, palette=palette)
    ds = open_dataset(root)
    assert ds.class_names == classes and ds.palette == palette and ds.dataset_key == ""


def test_cityscapes_label_ids_become_train_ids(tmp_path):
    label_ids = np.array([[7, 8, 11, 26], [24, 0, 1, 33], [23, 6, 4, 3]], np.uint8)
    for split in ("train", "val"):
        img_dir = tmp_path / "leftImg8bit" / split / "aachen"
        gt_dir = tmp_path / "gtFine" / split / "aachen"
        img_dir.mkdir(parents=True)
        gt_dir.mkdir(parents=True)
        write_image(img_dir / "aachen_000000_000019_leftImg8bit.png", _image(3, 4))
        cv2.imwrite(str(gt_dir / "aachen_000000_000019_gtFine_labelIds.png"), label_ids)
    ds = open_dataset(tmp_path)
    assert detect_format(tmp_path) == "cityscapes" and ds.class_names == CITYSCAPES_CLASSES
    expected = [[0, 1, 2, 13], [11, 255, 255, 18], [10, 255, 255, 255]]
    assert ds[0].mask.tolist() == expected
    assert len(open_dataset(tmp_path, "train", training=True)) == 1


def test_cityscapes_rejects_values_that_are_not_label_ids(tmp_path):
    (tmp_path / "leftImg8bit" / "val" / "x").mkdir(parents=True)
    (tmp_path / "gtFine" / "val" / "x").mkdir(parents=True)
    write_image(tmp_path / "leftImg8bit/val/x/x_1_leftImg8bit.png", _image(2, 2))
    bad = tmp_path / "gtFine/val/x/x_1_gtFine_labelIds.png"
    cv2.imwrite(str(bad), np.full((2, 2), 120, np.uint8))
    with pytest.raises(DataError, match="x_1_gtFine_labelIds.png: label ids \\[120\\]"):
        open_dataset(tmp_path)[0]


def test_folder_pair_with_class_file_and_splits(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    (tmp_path / "classes.txt").write_text("# my classes\nbackground\nweed 0 255 0\ncrop\n")
    for i in range(3):
        write_image(tmp_path / "images" / f"img{i}.png", _image(5, 6, seed=i))
        cv2.imwrite(str(tmp_path / "masks" / f"img{i}.png"), np.full((5, 6), i, np.uint8))  # greyscale
    ds = open_dataset(tmp_path)
    assert ds.format_name == "folder" and ds.split == "all" and len(ds) == 3
    assert ds.class_names == ("background", "weed", "crop") and ds.palette[1] == (0, 255, 0)
    assert [int(s.mask[0, 0]) for s in ds] == [0, 1, 2]
    (tmp_path / "val.txt").write_text("img2\n")
    assert [s.name for s in open_dataset(tmp_path)] == ["img2"]


def test_missing_mask_names_the_expected_file(tmp_path):
    root = _voc(tmp_path / "voc", {"a": _mask(), "b": _mask()})
    (root / "SegmentationClass" / "b.png").unlink()
    with pytest.raises(DataError, match="1 images have no mask; expected .*SegmentationClass/b.png"):
        open_dataset(root)


def test_size_mismatch_names_both_files(tmp_path):
    root = _voc(tmp_path / "voc", {"a": _mask()})
    write_image(root / "JPEGImages" / "a.jpg", _image(20, 30))
    with pytest.raises(DataError, match=r"a.png: mask is 16x12 .* its image .*a.jpg is 30x20"):
        open_dataset(root)[0]


def test_palette_index_beyond_class_count_names_the_file(tmp_path):
    classes, palette = ("bg", "car"), ((0, 0, 0), (0, 0, 142))
    mask = np.zeros((4, 4), np.uint8)
    mask[1, 1] = 9
    root = _voc(tmp_path / "voc", {"a": mask}, classes=classes, palette=palette)
    with pytest.raises(DataError, match=r"SegmentationClass/a.png: mask values \[9\] are beyond the class count"):
        open_dataset(root)[0]


def test_colour_outside_the_palette_names_the_file(tmp_path):
    root = _voc(tmp_path / "voc", {"a": _mask()})
    cv2.imwrite(str(root / "SegmentationClass" / "a.png"), np.full((12, 16, 3), 77, np.uint8))
    with pytest.raises(DataError, match="a.png: 192 pixels have colours outside the class palette"):
        open_dataset(root)[0]


def test_unreadable_image_and_unknown_layout(tmp_path):
    root = _voc(tmp_path / "voc", {"a": _mask()})
    (root / "JPEGImages" / "a.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="a.jpg: not a readable image"):
        open_dataset(root)[0]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="unknown dataset layout"):
        open_dataset(tmp_path / "empty")
    with pytest.raises(DataError, match="split list not found; available splits: \\['val'\\]"):
        open_dataset(root, "train")


def test_augment_shapes_values_determinism_and_padding():
    image, mask = _image(48, 64), _mask(48, 64, n=5)
    cfg = AugmentConfig(crop_size=(32, 40), base_size=(32, 40), scale_range=(0.5, 0.5))
    a_img, a_mask = augment(image, mask, np.random.default_rng(1), cfg)
    b_img, b_mask = augment(image, mask, np.random.default_rng(1), cfg)
    assert a_img.shape == (32, 40, 3) and a_img.dtype == np.uint8 and a_mask.shape == (32, 40)
    assert (a_img == b_img).all() and (a_mask == b_mask).all()
    # scale 0.5 of a 32x40 base leaves 16x20 of content: the rest is padding labelled ignore
    assert (a_mask == 255).sum() >= 32 * 40 - 16 * 20
    assert set(np.unique(a_mask)) <= set(np.unique(mask)) | {255}
    c_img, _ = augment(image, mask, np.random.default_rng(2), cfg)
    assert not (c_img == a_img).all()


def test_data_and_evaluation_import_without_torch(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import fcn_edge.data, fcn_edge.data.synthetic, fcn_edge.data.augment, fcn_edge.evaluate\n"
        "from fcn_edge.data.synthetic import SyntheticConfig, render_sample\n"
        "render_sample(SyntheticConfig(height=32, width=40), 'train', 0)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
