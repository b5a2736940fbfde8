"""core.vibe_data: presence, sizes, sha256 against hashlib on known bytes, cache invalidation."""
from __future__ import annotations

import hashlib
import os

from vibe_blender.core import vibe_data
from vibe_blender.core.vibe_data import HashCache, check_folder


def _write(folder, name, data: bytes):
    path = folder / name
    path.write_bytes(data)
    return path


def test_missing_folder():
    report = check_folder("/nonexistent/vibe_data")
    assert not report.exists and not report.ok
    assert report.message().startswith("VIBE data folder not found: /nonexistent/vibe_data")


def test_empty_folder_names_every_required_file(tmp_path):
    report = check_folder(tmp_path)
    assert report.exists and not report.ok
    assert report.missing_required == [
        "vibe_model_wo_3dpw.pth.tar or vibe_model_w_3dpw.pth.tar", "spin_model_checkpoint.pth.tar"]
    assert "lacks vibe_model_wo_3dpw.pth.tar or vibe_model_w_3dpw.pth.tar, spin_model" in report.message()


def test_complete_folder_sizes_and_hashes(tmp_path):
    _write(tmp_path, "vibe_model_w_3dpw.pth.tar", b"a" * 3000)
    _write(tmp_path, "spin_model_checkpoint.pth.tar", b"spin")
    _write(tmp_path, "smpl_mean_params.npz", b"")
    report = check_folder(tmp_path)
    assert report.ok and report.missing_required == []
    by_name = {f.name: f for f in report.files}
    assert by_name["vibe_model_w_3dpw.pth.tar"].size == 3000
    assert not by_name["vibe_model_wo_3dpw.pth.tar"].present
    assert all(f.sha256 is None for f in report.files)  # not computed unless asked
    cache = HashCache()
    hashed = {f.name: f for f in check_folder(tmp_path, with_hashes=True, cache=cache).files}
    assert hashed["spin_model_checkpoint.pth.tar"].sha256 == hashlib.sha256(b"spin").hexdigest()
    assert hashed["smpl_mean_params.npz"].sha256 == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")  # sha256 of b""
    assert hashed["vibe_model_w_3dpw.pth.tar"].sha256 == hashlib.sha256(b"a" * 3000).hexdigest()
    # a later cheap check reports the cached digests
    again = {f.name: f for f in check_folder(tmp_path, cache=HashCache.from_json(cache.to_json())).files}
    assert again["spin_model_checkpoint.pth.tar"].sha256 == hashlib.sha256(b"spin").hexdigest()


def test_sha256_of_a_multi_chunk_file(tmp_path):
    data = os.urandom(vibe_data.HASH_CHUNK_BYTES * 2 + 17)
    assert vibe_data.sha256_file(_write(tmp_path, "x", data)) == hashlib.sha256(data).hexdigest()


def test_cache_is_invalidated_when_the_file_changes(tmp_path):
    path = _write(tmp_path, "spin_model_checkpoint.pth.tar", b"one")
    cache = HashCache()
    assert cache.digest(path) == hashlib.sha256(b"one").hexdigest()
    path.write_bytes(b"three")
    os.utime(path, ns=(1, 1))
    assert cache.get(path) is None
    assert cache.digest(path) == hashlib.sha256(b"three").hexdigest()


def test_cache_from_bad_json_is_empty():
    assert HashCache.from_json("{not json").to_json() == "{}"
    assert HashCache.from_json("[1]").to_json() == "{}"


def test_names_match_the_engine():
    from vibe_engine import config

    assert vibe_data.VIBE_CHECKPOINT_NAMES == config.VIBE_CHECKPOINT_NAMES
    assert vibe_data.SPIN_CHECKPOINT_NAME == config.SPIN_CHECKPOINT_NAME
    assert vibe_data.OPTIONAL_DATA_NAMES == config.OPTIONAL_DATA_NAMES
