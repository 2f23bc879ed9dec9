"""``fashion-mnist``: Zalando's 70000 28x28 grey clothing images in 10 classes (IDX files)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..errors import DataError, DatasetNotFoundError
from .base import ArrayDataset, DataContext, DatasetSource, not_found, register_dataset
from .download import download_file
from .idx import find_idx, read_idx

log = logging.getLogger(__name__)

URL_ENV = "SAFECOMPRESS_FASHION_MNIST_URL"
# (images, labels) file stems of the official train and test parts, in the order they are pooled
PARTS: tuple[tuple[str, str], ...] = (
    ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
)
STEMS: tuple[str, ...] = tuple(stem for part in PARTS for stem in part)


@register_dataset("fashion-mnist")
class FashionMNIST(DatasetSource):
    hflip = True
    kind = "image"
    shape = (1, 28, 28)
    n_classes = 10
    synthetic = False
    description = "Fashion-MNIST, 70000 grey 28x28 clothing images, 10 classes (apt-get install dataset-fashion-mnist)"

    class_names: ClassVar[list[str]] = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]  # fmt: skip
    system_dirs: ClassVar[tuple[str, ...]] = ("/usr/share/datasets/fashion-mnist",)
    base_url: ClassVar[str] = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    # SHA-256 of the *decompressed* files (the .gz bytes differ between mirrors)
    sha256: ClassVar[dict[str, str]] = {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    }
    timeout: ClassVar[float] = 60.0

    def _dirs(self, ctx: DataContext) -> list[Path]:
        return ctx.search_dirs("fashion-mnist", system=tuple(self.system_dirs))

    def locate(self, ctx: DataContext) -> Path | None:
        for folder in self._dirs(ctx):
            if all(find_idx(folder, stem) is not None for stem in STEMS):
                return folder
        return None

    def _download(self, ctx: DataContext) -> Path:
        folder = Path(ctx.cache_dir) / "fashion-mnist"
        base = os.environ.get(URL_ENV) or self.base_url
        base = base if base.endswith("/") else base + "/"
        for stem in STEMS:
            if find_idx(folder, stem) is None:
                download_file(
                    base + stem + ".gz",
                    folder / f"{stem}.gz",
                    self.sha256[stem],
                    timeout=self.timeout,
                    checksum_of="payload",
                )
        return folder

    def _not_found(self, ctx: DataContext) -> DatasetNotFoundError:
        files = ", ".join(f"{s}.gz" for s in STEMS)
        return not_found(
            self.name,
            files,
            self._dirs(ctx),
            "Get it with one of: `apt-get install dataset-fashion-mnist` (Debian/Ubuntu); "
            "put the four files in a folder and pass it with --data-dir; "
            "or allow fetching them with --download (data.download: true).",
        )

    def load(self, ctx: DataContext) -> ArrayDataset:
        folder = self.locate(ctx)
        if folder is None:
            if not ctx.download:
                raise self._not_found(ctx)
            folder = self._download(ctx)
        images, labels = [], []
        for image_stem, label_stem in PARTS:
            image_path, label_path = find_idx(folder, image_stem), find_idx(folder, label_stem)
            assert image_path is not None and label_path is not None
            x, y = read_idx(image_path), read_idx(label_path)
            if x.ndim != 3 or x.shape[1:] != (28, 28) or y.ndim != 1 or len(x) != len(y):
                raise DataError(
                    f"{folder}: {image_path.name} holds images of shape {x.shape} and {label_path.name} "
                    f"labels of shape {y.shape}; expected N x 28 x 28 and N. Re-download the files"
                )
            images.append(x)
            labels.append(y)
        X = np.concatenate(images).astype(np.float32)[:, None] / np.float32(255.0)
        log.info("loaded fashion-mnist from %s: %d images", folder, len(X))
        return ArrayDataset(
            name=self.name,
            X=X,
            y=np.concatenate(labels).astype(np.int64),
            n_classes=self.n_classes,
            kind=self.kind,
            synthetic=False,
            source=str(folder),
            class_names=list(self.class_names),
        )
