"""Frames to a video file, headless: GIF through Pillow, MP4 through imageio's bundled ffmpeg."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from wm.core.errors import WMError
from wm.data.files import atomic_write, temp_name

FORMATS = ("gif", "mp4")


def video_format(path: str | Path) -> str:
    """``gif`` or ``mp4`` from the file name; one clear error for anything else."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise WMError(f"{path}: a video must end in .gif or .mp4")
    return suffix


def write_video(path: str | Path, frames: list[Image.Image], fps: float, colors: int = 96) -> Path:
    """Write ``frames`` (all one size) to ``path`` (.gif or .mp4) at ``fps`` frames per second."""
    path = Path(path)
    kind = video_format(path)
    if not frames:
        raise WMError(f"{path}: no frames to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "gif":
        _write_gif(path, frames, fps, colors)
    else:
        _write_mp4(path, frames, fps)
    return path


def _write_gif(path: Path, frames: list[Image.Image], fps: float, colors: int) -> None:
    # One shared palette without dithering: dithered frames differ pixel by pixel and GIF's
    # compression, which codes runs and repeats, then grows the file ~5x.
    palette = frames[len(frames) // 2].convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
    coded = [f.convert("RGB").quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    duration = round(1000 / fps)
    atomic_write(path, lambda f: coded[0].save(f, format="GIF", save_all=True, append_images=coded[1:],
                                               duration=duration, loop=0, optimize=True))


def _write_mp4(path: Path, frames: list[Image.Image], fps: float) -> None:
    import imageio.v2 as imageio

    # H.264 in yuv420p (what every player opens) needs even sides: pad by a white pixel if odd.
    width, height = frames[0].size
    even = (width + width % 2, height + height % 2)
    temp = temp_name(path).with_suffix(".mp4")  # ffmpeg picks the container from the suffix
    try:
        with imageio.get_writer(temp, fps=fps, codec="libx264", quality=8, macro_block_size=1,
                                ffmpeg_log_level="error") as writer:
            for frame in frames:
                canvas = Image.new("RGB", even, (255, 255, 255))
                canvas.paste(frame.convert("RGB"), (0, 0))
                writer.append_data(np.asarray(canvas))
        temp.replace(path)
    finally:
        temp.unlink(missing_ok=True)


def frame_count(path: str | Path) -> int:
    """Frames in a GIF or MP4 written by :func:`write_video` (for tests and checks)."""
    if video_format(path) == "gif":
        with Image.open(path) as gif:
            return gif.n_frames
    import imageio.v2 as imageio

    with imageio.get_reader(path) as reader:
        return sum(1 for _ in reader)
