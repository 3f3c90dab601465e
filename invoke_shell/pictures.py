"""Pictures in the terminal: a thumbnail of each image after it is made, and `!show`. Three inline image
protocols, chosen from what the terminal says about itself in its environment (never by querying it, which
hangs on terminals that do not answer): kitty's graphics protocol (kitty, Ghostty, WezTerm), iTerm2's inline
images (iTerm2, WezTerm, mintty) and sixel (foot, mlterm, contour, ...); elsewhere Unicode half-blocks (▀ with
24-bit colours), which any colour terminal shows. Nothing is drawn when the output is not a terminal.

The encoders are written here: no maintained Python library does all four without querying the terminal
(see the commit that added this). kitty and iTerm2 take the PNG itself, base64-encoded; sixel is the picture
reduced to at most 255 colours, six rows a band, runs compressed. Nothing here imports torch."""

from __future__ import annotations

import base64
import io
import math

from PIL import Image, ImageDraw

MODES = ("inline", "blocks", "off")  # inline: the terminal's protocol when it has one, else blocks
KITTY, ITERM2, SIXEL = "kitty", "iterm2", "sixel"
CELLS = (32, 16)          # the thumbnail's most columns and rows of cells
CELL_PIXELS = (10, 20)    # a usual cell's size, for the pixel protocols' thumbnails
SIXEL_TERMS = ("foot", "foot-extra", "mlterm", "contour", "yaft-256color", "xterm-sixel")


def protocol(environ) -> str | None:
    """The inline image protocol the terminal announces in its environment, or None (then half-blocks).
    Inside tmux or screen none (they pass such sequences on only when configured to)."""
    term, program = environ.get("TERM", ""), environ.get("TERM_PROGRAM", "")
    if environ.get("TMUX") or term.startswith(("screen", "tmux")):
        return None
    if environ.get("KITTY_WINDOW_ID") or term == "xterm-kitty" or program == "ghostty" or term == "xterm-ghostty":
        return KITTY
    if program in ("iTerm.app", "WezTerm", "mintty") or environ.get("LC_TERMINAL") == "iTerm2":
        return ITERM2
    if term in SIXEL_TERMS or "sixel" in term:
        return SIXEL
    return None


def render(image: Image.Image, mode: str, environ) -> str:
    """The text that draws `image` in this terminal ("" for mode off), ending with a newline."""
    if mode == "off":
        return ""
    found = protocol(environ) if mode == "inline" else None
    image = image.convert("RGB")
    if found == KITTY:
        return kitty(image)
    if found == ITERM2:
        return iterm2(image)
    if found == SIXEL:
        return sixel(_fit(image, (CELLS[0] * CELL_PIXELS[0], CELLS[1] * CELL_PIXELS[1])))
    return blocks(image)


def _cells(image: Image.Image) -> tuple[int, int]:
    """The columns and rows of cells a thumbnail of `image` takes (aspect kept, cells twice as tall as wide)."""
    scale = min(CELLS[0] / image.width, 2 * CELLS[1] / image.height)
    return max(1, round(image.width * scale)), max(1, round(image.height * scale / 2))


def _fit(image: Image.Image, box: tuple[int, int]) -> Image.Image:
    scale = min(box[0] / image.width, box[1] / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image if size == image.size else image.resize(size, Image.Resampling.LANCZOS)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def kitty(image: Image.Image) -> str:
    """kitty's graphics protocol: transmit and show a PNG (f=100) over c x r cells, in 4096-byte chunks."""
    cols, rows = _cells(image)
    data = base64.standard_b64encode(_png(image)).decode("ascii")
    chunks = [data[i:i + 4096] for i in range(0, len(data), 4096)] or [""]
    out = []
    for index, chunk in enumerate(chunks):
        more = int(index < len(chunks) - 1)
        keys = f"a=T,f=100,c={cols},r={rows},q=2,m={more}" if index == 0 else f"m={more}"
        out.append(f"\x1b_G{keys};{chunk}\x1b\\")
    return "".join(out) + "\n"


def iterm2(image: Image.Image) -> str:
    """iTerm2's inline image: the PNG, base64, shown over c x r cells."""
    cols, rows = _cells(image)
    data = _png(image)
    return (f"\x1b]1337;File=inline=1;size={len(data)};width={cols};height={rows};preserveAspectRatio=1:"
            f"{base64.standard_b64encode(data).decode('ascii')}\x07\n")


def blocks(image: Image.Image) -> str:
    """Unicode half-blocks: each cell an upper-half block, the top pixel its foreground colour and the bottom
    one its background, in 24-bit colour."""
    cols, rows = _cells(image)
    small = image.resize((cols, rows * 2), Image.Resampling.LANCZOS)
    pixels = small.load()
    lines = []
    for row in range(rows):
        cells = []
        for col in range(cols):
            top, bottom = pixels[col, 2 * row], pixels[col, 2 * row + 1]
            cells.append(f"\x1b[38;2;{top[0]};{top[1]};{top[2]}m\x1b[48;2;{bottom[0]};{bottom[1]};{bottom[2]}m▀")
        lines.append("".join(cells) + "\x1b[0m")
    return "\n".join(lines) + "\n"


def sixel(image: Image.Image) -> str:
    """DEC sixel: at most 255 colours (Pillow's median cut), each band of six rows drawn colour by colour,
    repeats run-length encoded (`!N<char>`)."""
    import numpy as np

    paletted = image.quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    width, height = paletted.size
    palette = paletted.getpalette()[: 3 * 256]
    indices = np.asarray(paletted, dtype=np.int32)
    out = [f'\x1bPq"1;1;{width};{height}']
    for index in np.unique(indices):
        r, g, b = (round(v * 100 / 255) for v in palette[3 * index: 3 * index + 3])
        out.append(f"#{index};2;{r};{g};{b}")
    weights = (1 << np.arange(6))[:, None]  # the bit of each row in a sixel
    for top in range(0, height, 6):
        band = indices[top:top + 6]
        strokes = []
        for index in np.unique(band):
            codes = ((band == index) * weights[: len(band)]).sum(axis=0)
            strokes.append(f"#{index}{_runs(codes)}")
        out.append("$".join(strokes) + "-")
    return "".join(out) + "\x1b\\\n"


def _runs(codes) -> str:
    """Sixel characters for a row of 6-pixel columns, with runs of four or more written `!N<char>`."""
    import numpy as np

    codes = np.asarray(codes)
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    lengths = np.diff(np.r_[starts, len(codes)])
    out = []
    for start, length in zip(starts.tolist(), lengths.tolist()):
        char = chr(63 + int(codes[start]))
        out.append(f"!{length}{char}" if length > 3 else char * length)
    return "".join(out)


def contact_sheet(pictures: list[tuple[Image.Image, str]], tile: int = 128) -> Image.Image:
    """Several pictures side by side in rows (as many columns as fit a square), each with its label under it."""
    columns = max(1, math.ceil(math.sqrt(len(pictures))))
    rows = math.ceil(len(pictures) / columns)
    label = 14
    sheet = Image.new("RGB", (columns * tile, rows * (tile + label)), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for k, (picture, text) in enumerate(pictures):
        x, y = (k % columns) * tile, (k // columns) * (tile + label)
        thumb = _fit(picture.convert("RGB"), (tile - 4, tile - 4))
        sheet.paste(thumb, (x + (tile - thumb.width) // 2, y + (tile - thumb.height) // 2))
        draw.text((x + 4, y + tile), text[:20], fill=(230, 230, 230))
    return sheet
