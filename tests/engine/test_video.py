"""vibe_engine.decode.video: true per-frame timestamps, displayed orientation, bad files, flat memory."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures import media
from vibe_engine.errors import VideoError
from vibe_engine.decode.video import Prefetcher, open_video

# 10 frames at 30 fps, a 0.5 s pause, 10 frames at 60 fps, then an odd 41.7 ms interval.
VFR_SEGMENTS = [(10, 3000), (5, 45000), (10, 1500), (6, 3753)]
PTS_TOLERANCE_S = 1e-3


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("video")
    vfr = root / "vfr.mp4"
    times = media.make_vfr_clip(vfr, VFR_SEGMENTS)
    cfr = media.write_cv2_clip(root / "cfr.mp4", (media.pattern_frame(i) for i in range(20)), fps=30)
    noise = media.write_cv2_clip(root / "noise.mp4", media.noise_frames(40, 160, 120), fps=25)
    return {"vfr": vfr, "cfr": cfr, "noise": noise, "root": root, "vfr_times": times}


def _read_all(path: Path, **kw) -> tuple[list, object]:
    with open_video(path, **kw) as reader:
        frames = [(f.index, f.time, media.read_index(f.image), f.image.shape) for f in reader]
        return frames, reader.info


@pytest.mark.parametrize("container", ["mp4", "mkv"])
def test_vfr_times_are_the_frames_pts(clips, container):
    path = clips["vfr"] if container == "mp4" else clips["root"] / "vfr.mkv"
    if container != "mp4":
        media.make_vfr_clip(path, VFR_SEGMENTS)
    warnings: list[str] = []
    frames, info = _read_all(path, on_warning=warnings.append)
    times = np.array([f[1] for f in frames])
    expected = clips["vfr_times"]
    assert len(frames) == len(expected) == 31
    assert np.abs(times - expected).max() < PTS_TOLERANCE_S
    probed = media.probe_frame_times(path)  # independent oracle: ffprobe
    assert np.abs(times - (probed - probed[0])).max() < PTS_TOLERANCE_S
    assert [f[2] for f in frames] == list(range(31))  # display order, B-frames reordered
    assert [f[0] for f in frames] == list(range(31))
    assert info.exact and info.vfr is True and info.frame_count == 31
    assert info.fps == pytest.approx(30 / expected[-1], rel=1e-3)
    assert warnings == []  # Matroska's frame-count estimate (97 here) is not a truncation


def test_constant_rate_clip(clips):
    with open_video(clips["cfr"]) as reader:
        before = reader.info
        frames = [(f.time, media.read_index(f.image)) for f in reader]
        after = reader.info
    assert (before.width, before.height, before.rotation, before.exact) == (160, 120, 0, False)
    assert before.frame_count == 20 and before.fps == pytest.approx(30)
    assert np.abs(np.array([t for t, _ in frames]) - np.arange(20) / 30).max() < PTS_TOLERANCE_S
    assert [i for _, i in frames] == list(range(20))
    assert after.exact and after.vfr is False and after.fps == pytest.approx(30, rel=1e-3)
    assert after.duration == pytest.approx(20 / 30, rel=1e-3)


def test_raw_stream_without_timestamps_falls_back_to_nominal_rate(clips):
    raw = media.make_raw_h264(clips["vfr"], clips["root"] / "raw.h264")
    warnings: list[str] = []
    frames, info = _read_all(raw, on_warning=warnings.append)
    assert [f[2] for f in frames] == list(range(31))
    np.testing.assert_allclose([f[1] for f in frames], np.arange(31) / 30.0, atol=1e-9)
    assert len(warnings) == 2 and "no usable frame rate" in warnings[0] and "timestamps" in warnings[1]
    assert info.exact and info.frame_count == 31 and info.fps == pytest.approx(30.0)


def test_second_pass_gives_the_same_frames(clips):
    with open_video(clips["cfr"]) as reader:
        first = [f.image.copy() for f in reader]
        second = [f.image for f in reader]
    assert len(first) == len(second) == 20
    assert all(np.array_equal(a, b) for a, b in zip(first, second))


def _marker_centre(image: np.ndarray) -> np.ndarray:
    red = (image[..., 0] > 180) & (image[..., 1] < 80) & (image[..., 2] < 80)
    return np.argwhere(red).mean(0)


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_rotated_clip_comes_out_as_displayed(clips, degrees):
    path = clips["root"] / f"rot{degrees}.mp4"
    ccw = media.make_rotated_clip(clips["cfr"], path, degrees)
    assert ccw in (90, 180, 270)
    with open_video(path) as reader:
        info = reader.info
        image = next(iter(reader)).image
    upright = np.rot90(media.pattern_frame(0), k=ccw // 90)  # what a player shows
    assert image.shape == upright.shape
    assert (info.width, info.height) == (upright.shape[1], upright.shape[0])
    assert info.rotation == (-ccw) % 360  # clockwise degrees
    assert np.abs(_marker_centre(image) - _marker_centre(upright)).max() < 1.0
    assert np.abs(image.astype(int) - upright).mean() < 4.0


def test_truncated_file_decodes_what_it_can_and_warns(clips):
    fast = media.make_faststart_copy(clips["noise"], clips["root"] / "noise_fast.mp4")
    cut = media.truncate_copy(fast, clips["root"] / "cut.mp4", fast.stat().st_size // 2)
    warnings: list[str] = []
    with open_video(cut, on_warning=warnings.append) as reader:
        assert reader.info.frame_count == 40  # the header still announces all frames
        n = sum(1 for _ in reader)
        info = reader.info
    assert 5 < n < 40
    assert info.frame_count == n and info.exact
    assert len(warnings) == 1 and "truncated" in warnings[0] and f"decoded {n} of the 40" in warnings[0]


def test_file_cut_before_any_frame_is_an_error(clips):
    fast = media.make_faststart_copy(clips["noise"], clips["root"] / "noise_fast2.mp4")
    cut = media.truncate_copy(fast, clips["root"] / "header_only.mp4", media.mp4_data_offset(fast))
    with open_video(cut) as reader:
        with pytest.raises(VideoError, match="no decodable frames") as err:
            list(reader)
    assert "\n" not in str(err.value)


def test_file_cut_before_its_index_is_an_error(clips):
    cut = media.truncate_copy(clips["noise"], clips["root"] / "no_index.mp4", 20_000)
    with pytest.raises(VideoError, match="cannot read .* as a video") as err:
        open_video(cut)
    assert "ffmpeg -i" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["notes.mp4", "notes.txt", "empty.mp4"])
def test_not_a_video(tmp_path, name):
    path = tmp_path / name
    path.write_text("" if name.startswith("empty") else "this is a shopping list, not a video\n" * 50)
    with pytest.raises(VideoError, match="cannot read .* as a video|is a text file, not a video"):
        open_video(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(VideoError, match="not found") as err:
        open_video(tmp_path / "nope.mp4")
    assert err.value.code == "VIDEO_UNREADABLE" and err.value.exit_code == 4
    with pytest.raises(VideoError, match="not a file"):
        open_video(tmp_path)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_memory_stays_flat_while_streaming(tmp_path):
    n, width, height = 1200, 320, 240  # 276 MB of decoded RGB in total
    frames = (np.roll(media.pattern_frame(i, width, height), i, axis=1) for i in range(n))
    path = media.write_cv2_clip(tmp_path / "long.mp4", frames, fps=30)
    peak, count = 0, 0
    with open_video(path) as reader:
        for frame in reader:
            count += 1
            if frame.index == 30:
                baseline = _rss_bytes()
            elif frame.index > 30:
                peak = max(peak, _rss_bytes())
    assert count == n
    assert peak - baseline < 30 * 2**20


def test_phone_like_hevc_mov_vfr_portrait(tmp_path):
    """iPhone-style: HEVC in a .mov, variable frame rate, stored landscape with a display rotation."""
    stored = tmp_path / "stored.mov"
    times = media.make_vfr_clip(stored, VFR_SEGMENTS, codec="libx265")
    ccw = media.make_rotated_clip(stored, tmp_path / "phone.mov", 270)
    with open_video(tmp_path / "phone.mov") as reader:
        frames = [(f.time, f.image) for f in reader]
        info = reader.info
    assert (info.width, info.height, info.codec.lower(), info.vfr) == (120, 160, "hevc", True)
    assert np.abs(np.array([t for t, _ in frames]) - times).max() < PTS_TOLERANCE_S
    for i, (_, image) in enumerate(frames):
        assert media.read_index(np.rot90(image, k=-(ccw // 90))) == i  # undo the display rotation


def test_prefetcher_gives_the_same_frames_and_stops_early_cleanly(clips):
    with open_video(clips["cfr"]) as reader:
        with Prefetcher(iter(reader), depth=2) as frames:
            ahead = [(f.index, f.time, f.image) for f in frames]
        plain = [(f.index, f.time, f.image) for f in reader]
        assert reader.info.exact and reader.info.frame_count == 20
        with Prefetcher(iter(reader), depth=2) as frames:  # stop after 3: decoder closed
            first = [f.index for _, f in zip(range(3), frames)]
        assert reader._captures == []
    assert first == [0, 1, 2] and len(ahead) == len(plain) == 20
    assert all(a[:2] == b[:2] and np.array_equal(a[2], b[2]) for a, b in zip(ahead, plain))


def test_prefetcher_raises_the_decoders_error_in_the_consumer(clips):
    fast = media.make_faststart_copy(clips["noise"], clips["root"] / "noise_fast3.mp4")
    cut = media.truncate_copy(fast, clips["root"] / "header_only3.mp4", media.mp4_data_offset(fast))
    with open_video(cut) as reader, Prefetcher(iter(reader)) as frames:
        with pytest.raises(VideoError, match="no decodable frames"):
            list(frames)
