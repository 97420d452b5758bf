"""The pattern file store: kind told from content, bad files refused, nothing written outside it."""

from __future__ import annotations

import hashlib
import io
import json
import re
import warnings
from pathlib import Path

import pytest
from PIL import Image

from problem_registry.enums import PatternKind
from problem_registry.errors import CorruptPattern, UnsafePath
from problem_registry.expectations import Expectation
from problem_registry.store.content import (
    MAX_IMAGE_PIXELS,
    InspectedContent,
    PatternStore,
    decode,
    inspect_content,
    read_input,
    sha256_of_file,
)
from problem_registry.store.patterns import NewPattern
from problem_registry.store.registry import Registry
from tests.helpers import (
    png_bytes,
    png_claiming,
    snapshot,
    stored_files,
    write_json,
    write_png,
    write_text,
)

# --- kind detection and verification -------------------------------------------------------


@pytest.mark.parametrize("name", ["photo.png", "photo.txt", "photo", "photo.json"])
def test_a_png_is_an_image_whatever_its_name(name: str) -> None:
    data = png_bytes()

    content = inspect_content(data, name)

    assert (content.kind, content.extension) == (PatternKind.image, "png")
    assert content.sha256 == hashlib.sha256(data).hexdigest()
    assert content.stored.size_bytes == len(data)


def test_a_jpeg_is_stored_with_the_jpg_extension() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 128, 255)).save(buffer, format="JPEG")

    content = inspect_content(buffer.getvalue(), "photo.jpeg")

    assert (content.kind, content.extension) == (PatternKind.image, "jpg")


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ('{"age": 41}', "features.txt"),
        ("[1, 2, 3]", "row"),
        ('\ufeff  {"bom": true}', "with-bom.dat"),
        ('\ufeff{"bom": true}', "with-bom.json"),
        ("3.5", "number.json"),  # any valid JSON document when the name says JSON
    ],
)
def test_json_is_recognised_from_its_content(text: str, name: str) -> None:
    content = inspect_content(text.encode("utf-8"), name)

    assert (content.kind, content.extension) == (PatternKind.json, "json")


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("a lovely film, I hated it", "review.txt"),
        ("naïve café — ünïcode ✓", "review"),
        ("{not json, just braces in prose}", "note.txt"),
        ("42", "answer.txt"),  # a number in a .txt file stays text
    ],
)
def test_other_utf8_is_text(text: str, name: str) -> None:
    content = inspect_content(text.encode("utf-8"), name)

    assert (content.kind, content.extension) == (PatternKind.text, "txt")


def test_truncated_png_is_refused_with_the_reason() -> None:
    data = png_bytes(size=(64, 64))

    for cut in (len(data) // 2, 40, 20):
        with pytest.raises(
            CorruptPattern, match=r"truncated\.png: (not a readable|named like an) image"
        ):
            inspect_content(data[:cut], "truncated.png")


def test_png_with_corrupted_pixel_data_is_refused() -> None:
    data = bytearray(png_bytes(color=(1, 2, 3), size=(32, 32)))
    start = data.index(b"IDAT") + 4
    data[start : start + 8] = b"\xff" * 8

    with pytest.raises(CorruptPattern, match="not a readable image"):
        inspect_content(bytes(data), "corrupt.png")


def test_text_named_png_is_refused() -> None:
    with pytest.raises(
        CorruptPattern, match=r"fake\.png: named like an image but not one Pillow can read"
    ):
        inspect_content(b"I am not a picture", "fake.png")


def test_non_utf8_text_is_refused_naming_the_offset() -> None:
    with pytest.raises(CorruptPattern, match=r"not UTF-8 text.*offset 3"):
        inspect_content("caf\u00e9 au lait".encode("latin-1") + b"\xff", "latin1.txt")
    with pytest.raises(CorruptPattern, match="offset 0"):
        inspect_content(b"\xff\xfe\x00\x01", "blob.bin")


def test_binary_with_nul_bytes_is_refused() -> None:
    with pytest.raises(CorruptPattern, match="NUL"):
        inspect_content(b"abc\x00def", "blob.txt")


def test_invalid_json_named_json_is_refused() -> None:
    with pytest.raises(CorruptPattern, match=r"bad\.json: not valid JSON"):
        inspect_content(b'{"a": 1,}', "bad.json")


def test_empty_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")

    with pytest.raises(CorruptPattern, match="empty"):
        read_input(empty)


def test_folders_missing_and_oversized_files_are_refused(tmp_path: Path) -> None:
    big = write_text(tmp_path / "big.txt", "x" * 101)

    with pytest.raises(CorruptPattern, match="a folder"):
        read_input(tmp_path)
    with pytest.raises(CorruptPattern, match="missing"):
        read_input(tmp_path / "nope.png")
    with pytest.raises(CorruptPattern, match="100-byte limit"):
        read_input(big, max_bytes=100)
    assert read_input(big, max_bytes=101) == b"x" * 101


@pytest.mark.parametrize(
    ("width", "height"),
    [(100_000, 100_000), (10_000, 10_000), (8_000, 8_000)],
    ids=["past-pillow-error", "past-pillow-warning", "past-our-limit"],
)
@pytest.mark.parametrize("name", ["bomb.png", "bomb.dat"])
def test_decompression_bomb_is_refused_without_decoding_it(
    width: int, height: int, name: str
) -> None:
    data = png_claiming(width, height)
    assert len(data) < 200

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's bomb warning must not reach the user either
        with pytest.raises(CorruptPattern, match="decompression bomb"):
            inspect_content(data, name)


def test_real_large_one_bit_png_is_refused() -> None:
    """A few kilobytes on disk, 41 million pixels once decoded."""
    side = int(MAX_IMAGE_PIXELS**0.5) + 10
    buffer = io.BytesIO()
    Image.new("1", (side, side), 0).save(buffer, format="PNG")
    assert len(buffer.getvalue()) < 100_000

    with pytest.raises(CorruptPattern, match=f"{side}x{side} image is over"):
        inspect_content(buffer.getvalue(), "big.png")


def test_patterns_decode_to_what_a_model_receives() -> None:
    image = decode(png_bytes(color=(1, 2, 3), size=(4, 3)), PatternKind.image)
    assert isinstance(image, Image.Image)
    assert image.size == (4, 3)
    assert image.getpixel((0, 0)) == (1, 2, 3)
    assert decode("\ufeffhello".encode(), PatternKind.text) == "hello"
    assert decode(b'{"a": [1, 2]}', PatternKind.json) == {"a": [1, 2]}


def test_artifact_hash_is_streamed_and_matches_hashlib(tmp_path: Path) -> None:
    artifact = tmp_path / "weights.bin"
    artifact.write_bytes(bytes(range(256)) * 5000)

    assert (
        sha256_of_file(artifact, chunk_size=1000)
        == hashlib.sha256(artifact.read_bytes()).hexdigest()
    )


# --- the store on disk -----------------------------------------------------------------------


def test_store_writes_once_under_the_hash_and_reads_back_verified(tmp_path: Path) -> None:
    store = PatternStore(tmp_path / "store")
    content = inspect_content(png_bytes(), "a.png")

    path = store.put(content)
    again = store.put(content)

    assert path == again == tmp_path / "store" / content.sha256[:2] / f"{content.sha256}.png"
    assert store.read(content.sha256, "png") == content.data
    assert stored_files(store.root) == [f"{content.sha256[:2]}/{content.sha256}.png"]


def test_store_repairs_a_damaged_copy_when_the_content_is_put_again(tmp_path: Path) -> None:
    store = PatternStore(tmp_path / "store")
    content = inspect_content(png_bytes(), "a.png")
    path = store.put(content)
    path.write_bytes(b"damaged")

    store.put(content)

    assert path.read_bytes() == content.data


def test_store_refuses_to_read_a_tampered_or_missing_file(tmp_path: Path) -> None:
    store = PatternStore(tmp_path / "store")
    content = inspect_content(png_bytes(), "a.png")
    path = store.put(content)
    path.write_bytes(png_bytes(color=(0, 0, 0)))

    with pytest.raises(CorruptPattern, match="altered"):
        store.read(content.sha256, "png")
    path.unlink()
    with pytest.raises(CorruptPattern, match="missing"):
        store.read(content.sha256, "png")


@pytest.mark.parametrize(
    ("sha256", "extension"),
    [
        ("../../../../tmp/evil", "png"),
        ("a" * 63 + "/", "png"),
        ("A" * 64, "png"),
        ("a" * 64, "png/../../x"),
        ("a" * 64, ""),
    ],
)
def test_store_never_computes_a_path_from_anything_but_a_hash(
    tmp_path: Path, sha256: str, extension: str
) -> None:
    store = PatternStore(tmp_path / "store")
    forged = InspectedContent(b"data", sha256, PatternKind.text, extension)

    with pytest.raises(UnsafePath):
        store.put(forged)
    with pytest.raises(UnsafePath):
        store.discard(sha256, extension)
    assert stored_files(tmp_path) == []


def test_store_refuses_a_linked_folder_planted_inside_it(tmp_path: Path) -> None:
    store = PatternStore(tmp_path / "store")
    content = inspect_content(png_bytes(), "a.png")
    outside = tmp_path / "outside"
    outside.mkdir()
    store.root.mkdir()
    (store.root / content.sha256[:2]).symlink_to(outside, target_is_directory=True)

    with pytest.raises(UnsafePath, match="symbolic link"):
        store.put(content)
    assert list(outside.iterdir()) == []


def test_store_refuses_a_linked_file_planted_inside_it(tmp_path: Path) -> None:
    store = PatternStore(tmp_path / "store")
    content = inspect_content(png_bytes(), "a.png")
    victim = write_text(tmp_path / "victim.txt", "precious")
    destination = store.path_of(content.sha256, "png")
    destination.parent.mkdir(parents=True)
    destination.symlink_to(victim)

    with pytest.raises(UnsafePath, match="symbolic link"):
        store.put(content)
    with pytest.raises(UnsafePath):
        store.discard(content.sha256, "png")
    assert victim.read_text() == "precious"
    assert destination.is_symlink()


# --- through the registry, on both backends --------------------------------------------------


def test_link_planted_in_the_store_refuses_the_add_and_writes_nothing(
    registry: Registry, tmp_path: Path
) -> None:
    registry.problems.add("hats")
    image = write_png(tmp_path / "in" / "a.png")
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    outside = tmp_path / "outside"
    outside.mkdir()
    registry.store.root.mkdir(parents=True)
    (registry.store.root / digest[:2]).symlink_to(outside, target_is_directory=True)
    before = snapshot(registry)

    with pytest.raises(UnsafePath, match="symbolic link inside the pattern store"):
        registry.patterns.add("hats", [NewPattern(image, Expectation.exact("x"))])

    assert snapshot(registry) == before
    assert list(outside.iterdir()) == []


def test_adding_patterns_writes_only_inside_the_store(registry: Registry, tmp_path: Path) -> None:
    registry.problems.add("hats")
    weird = tmp_path / "in" / ".." / "in" / "..weird name with spaces.png"
    files = [
        write_png(tmp_path / "in" / "a.png"),
        write_text(tmp_path / "in" / "b.txt", "text"),
        write_json(tmp_path / "in" / "c.json", {"k": 1}),
        write_png(weird, color=(5, 5, 5)),
    ]
    outside_before = [f for f in stored_files(tmp_path) if not f.startswith("patterns/")]

    added = registry.patterns.add(
        "hats", [NewPattern(path, Expectation.exact("x")) for path in files]
    ).added

    outside_after = [f for f in stored_files(tmp_path) if not f.startswith("patterns/")]
    assert outside_after == outside_before
    assert stored_files(registry.store.root) == sorted(v.file for v in added)
    assert [v.kind for v in added] == ["image", "text", "json", "image"]


BAD_FILES = [
    ("truncated.png", png_bytes(size=(64, 64))[:60]),
    ("fake.png", b"plain text"),
    ("latin1.txt", "café".encode("latin-1")),
    ("empty.txt", b""),
    ("bomb.png", png_claiming(100_000, 100_000)),
    ("bomb.dat", png_claiming(10_000, 10_000)),
    ("bad.json", b"{"),
]


def test_a_bad_file_is_refused_by_the_registry_and_nothing_written(
    registry: Registry, tmp_path: Path
) -> None:
    registry.problems.add("hats")
    good = write_png(tmp_path / "in" / "good.png")
    before = snapshot(registry)

    for name, data in BAD_FILES:
        path = tmp_path / "in" / name
        path.write_bytes(data)
        with pytest.raises(CorruptPattern, match=re.escape(name)):
            registry.patterns.add(
                "hats",
                [
                    NewPattern(good, Expectation.exact("x")),
                    NewPattern(path, Expectation.exact("x")),
                ],
            )

    assert snapshot(registry) == before
    assert stored_files(registry.store.root) == []


def test_json_helper_writes_what_the_store_reads_as_json(tmp_path: Path) -> None:
    path = write_json(tmp_path / "x.json", {"b": 1, "a": [True, None]})

    content = inspect_content(path.read_bytes(), path.name)

    assert json.loads(content.data) == {"a": [True, None], "b": 1}
