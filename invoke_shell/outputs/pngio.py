"""PNG files with text chunks: written atomically, read back as plain data."""

from __future__ import annotations

import os

from PIL import Image, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from ..atomic import write_atomic
from ..errors import ImageError


DEFAULT_COMPRESSION = 6  # zlib's level, as Pillow and InvokeAI 2.3 (-z) default to


def write_png(path: str, image: Image.Image, chunks: dict[str, str], compression: int | None = None) -> None:
    """Write `image` with text `chunks` to `path`: a temporary name in the same folder, then a rename,
    so `path` never holds a partial file. `compression` is zlib's level, 0 (none) to 9."""
    info = PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)  # tEXt, or iTXt when the text is not Latin-1
    level = DEFAULT_COMPRESSION if compression is None else compression
    write_atomic(path, lambda f: image.save(f, format="PNG", pnginfo=info, compress_level=level))


def read_text_chunks(path: str) -> dict[str, str]:
    """The text chunks of a PNG (tEXt, zTXt, iTXt) as strings; ImageError when it is not a readable PNG."""
    if os.path.isdir(path):
        raise ImageError(f"{path} is a folder, not an image")
    if os.path.exists(path) and not os.path.isfile(path):  # a FIFO or a device would block or never end
        raise ImageError(f"{path} is not a regular file")
    try:
        with Image.open(path) as im:
            if im.format != "PNG":
                raise ImageError(f"{path} is a {im.format} image; only PNGs carry the metadata")
            im.load()
            return {str(k): str(v) for k, v in getattr(im, "text", {}).items()}
    except FileNotFoundError:
        raise ImageError(f"no such file: {path}") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path} is not an image Pillow can read") from None
    except Image.DecompressionBombError as exc:  # Pillow's limit on pixels, kept
        raise ImageError(f"{path} is too large to open safely ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"cannot read {path}: {exc}") from None
