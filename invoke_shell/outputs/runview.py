"""What a run looked like: step previews (--save_intermediates) and one labelled strip (--strip)."""

from __future__ import annotations

import os

from PIL import Image, ImageDraw

from .pngio import write_png

STRIP_FRAME_HEIGHT = 128  # frames are scaled to at most this height, so long runs stay viewable


class RunRecorder:
    """Collects latent previews during a run (fed by the engine's on_start/on_step callbacks); `preview`
    turns latents (N, C, H/f, W/f) into N pictures (the engine's, handed in)."""

    def __init__(self, preview, names: list[str], steps_run: int, every: int | None, keep_all: bool):
        self.preview = preview
        self.names = names          # per image: the file stem's seed part (`<seed>` or a variation's sub-seed)
        self.steps_run = steps_run
        self.every = every
        self.keep_all = keep_all
        self.offset = 0             # index of the current UNet batch's first image
        self.start: dict[int, Image.Image] = {}
        self.frames: dict[int, list[tuple[int, Image.Image]]] = {}

    def wanted(self, step: int) -> bool:
        return self.keep_all or (self.every is not None and (step % self.every == 0 or step == self.steps_run))

    def on_start(self, latents) -> None:
        if self.keep_all:
            for i, image in enumerate(self.preview(latents)):
                self.start[self.offset + i] = image

    def on_step(self, step: int, latents) -> None:
        if self.wanted(step):
            for i, image in enumerate(self.preview(latents)):
                self.frames.setdefault(self.offset + i, []).append((step, image))

    def write_intermediates(self, outdir: str, prefix: str) -> list[str]:
        """`<outdir>/intermediates/<prefix>/<seed>.<step>.png` for every Nth step and the last."""
        folder = os.path.join(outdir, "intermediates", prefix)
        os.makedirs(folder, exist_ok=True)
        paths = []
        for index, frames in sorted(self.frames.items()):
            for step, image in frames:
                if self.every is not None and (step % self.every == 0 or step == self.steps_run):
                    path = os.path.join(folder, f"{self.names[index]}.{step:04d}.png")
                    write_png(path, image, {})
                    paths.append(path)
        return paths

    def strip(self, index: int, final: Image.Image, title: str) -> Image.Image:
        """The start, every step run and the final image side by side, labelled, under a title."""
        labelled = [("start", self.start[index])] + [(str(step), image) for step, image in self.frames[index]]
        labelled.append(("final", final))
        scale = min(1.0, STRIP_FRAME_HEIGHT / final.height)
        w, h = max(1, round(final.width * scale)), max(1, round(final.height * scale))
        label_h, title_h, gap = 12, 16, 2
        strip = Image.new("RGB", (len(labelled) * (w + gap) + gap, title_h + h + label_h + gap), "white")
        draw = ImageDraw.Draw(strip)
        draw.text((gap, 2), title, fill="black")
        for i, (label, image) in enumerate(labelled):
            x = gap + i * (w + gap)
            strip.paste(image.resize((w, h), Image.Resampling.NEAREST), (x, title_h))
            draw.text((x + 1, title_h + h + 1), label, fill="black")
        return strip


def strip_title(schedule, mode: str = "img2img") -> str:
    """The strip's heading: the mode (txt2img, img2img or inpaint), the strength and the steps run."""
    if schedule.strength is None:
        return f"txt2img: {schedule.steps_run} of {schedule.steps} steps"
    return f"{mode}: strength {schedule.strength:.2f}, {schedule.steps_run} of {schedule.steps} steps"
