"""``imagenet100``: a folder of images with one subfolder per class (e.g. the ImageNet-100 subset).

Layout: ``ROOT/<class>/<image>`` or ``ROOT/train/<class>/...`` and ``ROOT/val/<class>/...`` (pooled).
Images are centre-cropped to a square and resized to ``ctx.image_size`` with Pillow, an optional
dependency (``pip install safecompress[images]``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .base import ArrayDataset, DataContext, DatasetSource, not_found, register_dataset

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
SPLITS = ("train", "val")


def _require_pillow() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise DataError(
            "reading folders of images needs Pillow; install it with `pip install safecompress[images]`"
        ) from None
    return Image


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def image_roots(folder: Path) -> list[Path]:
    """The class-folder roots under ``folder`` (``train``/``val`` if present, else ``folder``), or []
    when it is not laid out as one subfolder of images per class."""
    if not folder.is_dir():
        return []
    roots = [folder / s for s in SPLITS if (folder / s).is_dir()] or [folder]
    for root in roots:
        classes = _class_dirs(root)
        if not classes or not all(_images(c) for c in classes):
            return []
    return roots


def load_image(path: Path, size: int, Image: Any) -> np.ndarray:
    """One image as a (3, size, size) uint8 array: RGB, centre-cropped to a square, resized."""
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            w, h = img.size
            side = min(w, h)
            left, top = (w - side) // 2, (h - side) // 2
            img = img.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read image {path} ({exc}); replace or delete the file") from None


@register_dataset("imagenet100")
class ImageNet100(DatasetSource):
    hflip = True
    kind = "image"
    shape = None  # (3, image_size, image_size)
    n_classes = None  # the number of class folders
    synthetic = False
    description = "a folder of images, one subfolder per class (e.g. ImageNet-100); resized to data.image_size"

    def _dirs(self, ctx: DataContext) -> list[Path]:
        dirs = [Path(ctx.path)] if ctx.path is not None else []
        return dirs + ctx.search_dirs("imagenet100")

    def locate(self, ctx: DataContext) -> Path | None:
        return next((d for d in self._dirs(ctx) if image_roots(d)), None)

    def load(self, ctx: DataContext) -> ArrayDataset:
        folder = self.locate(ctx)
        if folder is None:
            raise not_found(
                self.name,
                "one subfolder of images (.jpg/.png) per class (optionally under train/ and val/)",
                self._dirs(ctx),
                "Pass the folder with --data-dir or data.path",
            )
        Image = _require_pillow()
        roots = image_roots(folder)
        class_names = sorted({c.name for root in roots for c in _class_dirs(root)})
        index = {name: i for i, name in enumerate(class_names)}
        files = [(p, index[c.name]) for root in roots for c in _class_dirs(root) for p in _images(c)]
        size = int(ctx.image_size)
        pixels = np.empty((len(files), 3, size, size), dtype=np.uint8)
        for i, (path, _) in enumerate(files):
            pixels[i] = load_image(path, size, Image)
            if (i + 1) % 10000 == 0:
                log.info("imagenet100: %d/%d images read", i + 1, len(files))
        log.info("loaded %d images in %d classes from %s", len(files), len(class_names), folder)
        return ArrayDataset(
            name=self.name,
            X=pixels.astype(np.float32) / np.float32(255.0),
            y=np.array([label for _, label in files], dtype=np.int64),
            n_classes=len(class_names),
            kind=self.kind,
            synthetic=False,
            source=str(folder),
            class_names=class_names,
        )
