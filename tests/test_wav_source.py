"""The WAV file source: samples equal the file, looping, formats, errors."""

from __future__ import annotations

import shutil
import struct
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from appliance.capture.config import AudioConfig
from appliance.capture.sources.wavfile import WavSource
from appliance.errors import ConfigError, SourceUnavailable


def write_wav(path: Path, frames: bytes, rate: int, channels: int, width: int) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(frames)
    return path


def read_blocks(source: WavSource, config: AudioConfig, blocks: int) -> np.ndarray:
    source.open(config)
    try:
        return np.concatenate([source.read() for _ in range(blocks)])
    finally:
        source.close()


def test_16_bit_samples_equal_the_file_and_loop(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    samples = rng.integers(-32768, 32768, size=(1000, 3), dtype=np.int16)
    path = write_wav(tmp_path / "a.wav", samples.astype("<i2").tobytes(), 48000, 3, 2)
    source = WavSource(path)
    caps = source.probe()
    assert caps.rates == (48000,) and caps.channels == (1, 2, 3)
    got = read_blocks(source, AudioConfig(48000, 3, 256, 80), 9)  # 2304 frames: loops twice
    assert got.dtype == np.int16
    assert np.array_equal(got, np.concatenate([samples] * 3)[:2304])
    assert source.info.spec == f"wav:{path}"


def test_fewer_channels_take_the_first_ones(tmp_path: Path) -> None:
    samples = np.arange(512 * 4, dtype=np.int16).reshape(512, 4)
    path = write_wav(tmp_path / "b.wav", samples.tobytes(), 16000, 4, 2)
    got = read_blocks(WavSource(path), AudioConfig(16000, 2, 256, 80), 2)
    assert np.array_equal(got, samples[:, :2])


@pytest.mark.parametrize("width", [1, 3, 4])
def test_other_widths_keep_the_top_16_bits(tmp_path: Path, width: int) -> None:
    rng = np.random.default_rng(width)
    bits = 8 * width
    if width == 1:
        values = rng.integers(0, 256, size=(512, 2))
        raw = values.astype(np.uint8).tobytes()
        expected = ((values - 128) << 8).astype(np.int16)
    else:
        values = rng.integers(-(2 ** (bits - 1)), 2 ** (bits - 1), size=(512, 2))
        raw = values.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :width].tobytes()
        expected = (values >> (bits - 16)).astype(np.int16)
    path = write_wav(tmp_path / "w.wav", raw, 8000, 2, width)
    got = read_blocks(WavSource(path), AudioConfig(8000, 2, 256, 80), 2)
    assert np.array_equal(got, expected)


def test_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"WAV file .*nope\.wav does not exist"):
        WavSource(tmp_path / "nope.wav")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not a wav file at all")
    with pytest.raises(ConfigError, match="is not a WAV file this device reads"):
        WavSource(junk)
    path = write_wav(tmp_path / "c.wav", bytes(400), 16000, 2, 2)
    source = WavSource(path)
    with pytest.raises(ConfigError, match="rate 48000 is not supported; this file is 16000 Hz"):
        source.open(AudioConfig(48000, 2, 256, 80))
    with pytest.raises(ConfigError, match="channels 3 is not supported; this file has 1 to 2"):
        source.open(AudioConfig(16000, 3, 256, 80))
    path.unlink()
    with pytest.raises(SourceUnavailable, match="is missing"):
        source.probe()


def test_volume_zero_mutes(tmp_path: Path) -> None:
    samples = np.full((512, 1), 1234, dtype=np.int16)
    path = write_wav(tmp_path / "d.wav", samples.tobytes(), 16000, 1, 2)
    source = WavSource(path)
    source.open(AudioConfig(16000, 1, 256, 80))
    try:
        assert (source.read() == 1234).all()
        source.set_volume(0)
        assert not source.read().any()
    finally:
        source.close()
    with pytest.raises(SourceUnavailable, match="closed"):
        source.read()


def write_extensible(path: Path, values: np.ndarray, rate: int, width: int) -> Path:
    """A WAVE_FORMAT_EXTENSIBLE file of integer PCM, as sox and ffmpeg write them."""
    channels = values.shape[1]
    data = values.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :width].tobytes()
    pcm_guid = struct.pack("<H", 1) + bytes.fromhex("000000001000800000aa00389b71")
    fmt = (
        struct.pack(
            "<HHIIHHHHI",
            0xFFFE,
            channels,
            rate,
            rate * channels * width,
            channels * width,
            8 * width,
            22,
            8 * width,
            0,
        )
        + pcm_guid
    )
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"LIST" + struct.pack("<I", 4) + b"INFO"  # a chunk to skip
    body += b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


@pytest.mark.parametrize("width", [2, 3])
def test_extensible_header_is_read(tmp_path: Path, width: int) -> None:
    rng = np.random.default_rng(20 + width)
    bits = 8 * width
    values = rng.integers(-(2 ** (bits - 1)), 2 ** (bits - 1), size=(300, 6))
    path = write_extensible(tmp_path / "ext.wav", values, 16000, width)
    with pytest.raises(wave.Error, match="unknown format: 65534"):
        wave.open(str(path), "rb").close()  # what the standard library says on 3.11
    source = WavSource(path)
    assert source.probe().channels == (1, 2, 3, 4, 5, 6)
    got = read_blocks(source, AudioConfig(16000, 6, 100, 80), 4)  # loops once
    expected = (values >> (bits - 16)).astype(np.int16)
    assert np.array_equal(got, np.concatenate([expected, expected])[:400])


def test_ffmpeg_multichannel_wav_is_read(tmp_path: Path) -> None:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg is not installed")
    samples = np.random.default_rng(5).integers(-32768, 32768, size=(480, 8), dtype=np.int16)
    raw = tmp_path / "in.raw"
    samples.tofile(raw)
    out = tmp_path / "ff.wav"
    subprocess.run(
        [ffmpeg, "-loglevel", "error", "-f", "s16le", "-ar", "48000", "-ac", "8", "-i", str(raw),
         "-c:a", "pcm_s32le", str(out)],
        check=True, timeout=60,
    )  # fmt: skip
    got = read_blocks(WavSource(out), AudioConfig(48000, 8, 240, 80), 2)
    assert np.array_equal(got, samples)
