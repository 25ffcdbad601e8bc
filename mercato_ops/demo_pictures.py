"""The demo shop's product photos, drawn with Pillow instead of downloaded.

`make run` shows a catalog that looks like a shop's: a mug, a tote bag, coffee beans,
a tea tin and a notebook, each on a clean studio background. The pictures are drawn
here and shipped as small JPEGs in `mercato_ops/demo_assets/` (redraw them with
`python -m mercato_ops.demo_pictures`); nothing is fetched from outside.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

SIZE = 512
SCALE = 2  # drawn at twice the size, then reduced: smooth edges without extra code
MAX_BYTES = 60 * 1024
ASSETS = "demo_assets"

Box = tuple[float, float, float, float]
Draw = Callable[[ImageDraw.ImageDraw], None]


def _s(*values: float) -> tuple[int, ...]:
    return tuple(int(v * SCALE) for v in values)


def _backdrop() -> Image.Image:
    """A light studio backdrop, lighter at the top, with a faint floor line."""
    side = SIZE * SCALE
    image = Image.new("RGB", (side, side))
    draw = ImageDraw.Draw(image)
    for y in range(side):
        shade = int(250 - 16 * (y / side))
        draw.line([(0, y), (side, y)], fill=(shade, shade - 2, shade - 6))
    return image


def _shadow(image: Image.Image, box: Box) -> None:
    """A soft contact shadow under the object."""
    layer = Image.new("L", image.size, 0)
    ImageDraw.Draw(layer).ellipse(_s(*box), fill=90)
    layer = layer.filter(ImageFilter.GaussianBlur(14 * SCALE))
    image.paste((120, 112, 104), mask=layer)


def _cylinder(draw: ImageDraw.ImageDraw, left: float, top: float, right: float, bottom: float,
              body: tuple[int, int, int], light: tuple[int, int, int]) -> None:
    rim = (right - left) * 0.16
    draw.rectangle(_s(left, top + rim / 2, right, bottom), fill=body)
    draw.ellipse(_s(left, bottom - rim / 2, right, bottom + rim / 2), fill=body)
    width = right - left
    draw.rectangle(_s(left + width * 0.16, top + rim, left + width * 0.26, bottom - 4),
                   fill=light)


def draw_mug(draw: ImageDraw.ImageDraw) -> None:
    teal, light, dark = (38, 120, 130), (92, 172, 180), (26, 88, 96)
    draw.ellipse(_s(296, 200, 396, 330), outline=teal, width=26 * SCALE)
    _cylinder(draw, 130, 150, 330, 400, teal, light)
    draw.ellipse(_s(130, 134, 330, 166), fill=dark)
    draw.ellipse(_s(142, 140, 318, 162), fill=(82, 50, 34))
    draw.ellipse(_s(200, 144, 250, 152), fill=(120, 80, 56))


def draw_tote(draw: ImageDraw.ImageDraw) -> None:
    canvas, seam, strap = (226, 212, 184), (196, 180, 150), (170, 150, 118)
    draw.arc(_s(170, 60, 250, 250), 180, 360, fill=strap, width=16 * SCALE)
    draw.arc(_s(262, 60, 342, 250), 180, 360, fill=strap, width=16 * SCALE)
    draw.polygon(_s(120, 150, 392, 150, 410, 420, 102, 420), fill=canvas)
    draw.line(_s(120, 168, 392, 168), fill=seam, width=3 * SCALE)
    for x in (178, 258, 334):
        draw.line(_s(x, 150, x, 168), fill=seam, width=2 * SCALE)
    draw.ellipse(_s(206, 236, 306, 336), fill=(200, 72, 60))
    draw.polygon(_s(226, 310, 226, 262, 256, 292, 286, 262, 286, 310), fill=canvas)


def draw_coffee(draw: ImageDraw.ImageDraw) -> None:
    kraft, fold, label = (176, 134, 92), (150, 110, 72), (246, 240, 226)
    draw.polygon(_s(150, 120, 362, 120, 380, 410, 132, 410), fill=kraft)
    draw.rectangle(_s(150, 100, 362, 130), fill=fold)
    draw.line(_s(150, 114, 362, 114), fill=(120, 86, 54), width=3 * SCALE)
    draw.rounded_rectangle(_s(186, 200, 326, 310), radius=10 * SCALE, fill=label)
    draw.ellipse(_s(236, 222, 276, 262), fill=(60, 36, 24))
    draw.line(_s(244, 228, 266, 258), fill=label, width=3 * SCALE)
    for row in range(3):
        draw.rectangle(_s(206, 274 + row * 10, 306 - row * 24, 278 + row * 10),
                       fill=(120, 100, 84))
    for x, y in ((110, 420), (150, 438), (344, 430), (390, 414), (300, 446), (200, 448)):
        draw.ellipse(_s(x, y, x + 34, y + 24), fill=(74, 44, 28))
        draw.arc(_s(x + 6, y + 2, x + 30, y + 22), 200, 340, fill=(40, 22, 14),
                 width=2 * SCALE)


def draw_tea(draw: ImageDraw.ImageDraw) -> None:
    green, light, gold = (40, 86, 64), (78, 130, 104), (196, 160, 82)
    _cylinder(draw, 156, 170, 356, 410, green, light)
    draw.rectangle(_s(156, 140, 356, 186), fill=gold)
    draw.ellipse(_s(156, 126, 356, 156), fill=(220, 188, 110))
    draw.rectangle(_s(156, 250, 356, 330), fill=(238, 230, 206))
    draw.ellipse(_s(232, 262, 280, 318), fill=green)
    draw.line(_s(256, 266, 256, 314), fill=(238, 230, 206), width=3 * SCALE)
    draw.rectangle(_s(156, 244, 356, 250), fill=gold)
    draw.rectangle(_s(156, 330, 356, 336), fill=gold)


def draw_notebook(draw: ImageDraw.ImageDraw) -> None:
    cover, pages, band = (34, 52, 92), (244, 240, 230), (20, 24, 30)
    draw.rounded_rectangle(_s(146, 96, 376, 420), radius=14 * SCALE, fill=pages)
    draw.rounded_rectangle(_s(136, 90, 366, 414), radius=14 * SCALE, fill=cover)
    draw.rectangle(_s(136, 90, 156, 414), fill=(26, 40, 74))
    draw.rectangle(_s(322, 90, 334, 414), fill=band)
    draw.polygon(_s(250, 414, 268, 414, 268, 458, 259, 448, 250, 458), fill=(186, 58, 52))
    draw.rounded_rectangle(_s(196, 150, 300, 190), radius=6 * SCALE, fill=(214, 200, 160))


PICTURES: dict[str, tuple[Draw, Box]] = {
    "mug": (draw_mug, (110, 380, 420, 430)),
    "tote": (draw_tote, (90, 400, 422, 440)),
    "coffee": (draw_coffee, (100, 392, 420, 470)),
    "tea": (draw_tea, (140, 392, 372, 440)),
    "notebook": (draw_notebook, (120, 400, 392, 440)),
}


def draw_picture(name: str) -> bytes:
    """The JPEG of one demo picture (`PICTURES` names them), under MAX_BYTES."""
    draw_object, shadow = PICTURES[name]
    image = _backdrop()
    _shadow(image, shadow)
    draw_object(ImageDraw.Draw(image))
    image = image.resize((SIZE, SIZE), Image.Resampling.LANCZOS)
    for quality in (86, 78, 70, 60):
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality, optimize=True, progressive=True)
        if out.tell() <= MAX_BYTES:
            return out.getvalue()
    raise ValueError(f"the {name} picture does not fit in {MAX_BYTES} bytes")


def shipped_picture(name: str) -> bytes:
    """The picture as shipped in demo_assets/, drawn afresh if the file is not there."""
    shipped = resources.files("mercato_ops").joinpath(ASSETS, f"{name}.jpg")
    if shipped.is_file():
        return shipped.read_bytes()
    return draw_picture(name)


def write_assets(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in PICTURES:
        path = folder / f"{name}.jpg"
        path.write_bytes(draw_picture(name))
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_assets(Path(__file__).parent / ASSETS):
        sys.stdout.write(f"{path} {path.stat().st_size} bytes\n")
