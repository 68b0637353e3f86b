"""Laying out a simulated bank: size mixes, boards, and the kiosk configuration it writes."""

from __future__ import annotations

import tomllib

import pytest

from hardware_sim.bank_layout import BankLayout, LayoutError, parse_board_list, parse_size_mix
from kiosk.hardware import parse_door_bank_config, parse_scanner_config
from kiosk.hardware.door_map import LockAddress
from kiosk.hardware.protocols import BoardProtocol
from kiosk.hardware.protocols.kerong import LockBitPolarity
from shared.sizes import Size

EIGHT_A, KERONG = BoardProtocol.EIGHT_A, BoardProtocol.KERONG


def test_size_mix_keeps_the_order_given() -> None:
    assert parse_size_mix(" large=1, Small=2 ,xlarge=0") == (
        (Size.LARGE, 1),
        (Size.SMALL, 2),
        (Size.XLARGE, 0),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tiny=3", "unknown size 'tiny'"),
        ("small", "expected SIZE=COUNT"),
        ("small=x", "count of small doors must be a whole number"),
        ("small=-1", "at least 0"),
        ("small=1,small=2", "appears twice"),
        ("small=1,,large=2", "empty part"),
        ("", "size mix is empty"),
    ],
)
def test_bad_size_mixes_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(LayoutError, match=message):
        parse_size_mix(text)


def test_board_list_reads_addresses_and_optional_lock_counts() -> None:
    assert parse_board_list("2:8, 3") == ((2, 8), (3, None))
    with pytest.raises(LayoutError, match="lock count of board 2 must be at least 1"):
        parse_board_list("2:0")
    with pytest.raises(LayoutError, match="board address must be a whole number"):
        parse_board_list("two:8")


def test_doors_fill_as_few_boards_as_needed_with_sizes_in_mix_order() -> None:
    sizes = parse_size_mix("small=8,medium=6,large=4,xlarge=2")

    layout = BankLayout.plan(KERONG, doors=20, sizes=sizes)

    assert layout.boards == ((0, 16), (1, 4))
    assert [(d.number, d.size, d.board, d.lock) for d in layout.doors[7:9]] == [
        (8, Size.SMALL, 0, 8),
        (9, Size.MEDIUM, 0, 9),
    ]
    assert layout.door(17) == layout.doors[16]
    assert (layout.door(17).board, layout.door(17).lock, layout.door(17).size) == (1, 1, Size.LARGE)
    assert layout.summary() == (
        "20 doors (8 small, 6 medium, 4 large, 2 xlarge) on Kerong boards 0 (16 locks), 1 (4 locks)"
    )


def test_eight_a_boards_take_fifty_locks_unless_told_otherwise() -> None:
    assert BankLayout.plan(EIGHT_A, doors=120).boards == ((1, 50), (2, 50), (3, 20))
    assert BankLayout.plan(EIGHT_A, doors=30, locks_per_board=24).boards == ((1, 24), (2, 6))


def test_without_a_mix_every_door_is_medium_and_without_a_count_the_mix_decides() -> None:
    assert {d.size for d in BankLayout.plan(EIGHT_A, doors=3).doors} == {Size.MEDIUM}
    assert len(BankLayout.plan(EIGHT_A, sizes=((Size.SMALL, 2), (Size.LARGE, 1))).doors) == 3


def test_given_boards_are_filled_in_order_and_may_have_spare_channels() -> None:
    layout = BankLayout.plan(EIGHT_A, doors=10, boards=((5, 8), (2, None), (9, 4)))

    assert layout.boards == ((5, 8), (2, 50), (9, 4))
    assert layout.doors_per_board() == {5: 8, 2: 2}
    assert (layout.door(9).board, layout.door(9).lock) == (2, 1)


@pytest.mark.parametrize(
    ("protocol", "kwargs", "message"),
    [
        (EIGHT_A, {}, "give the number of doors, the size mix, or both"),
        (EIGHT_A, {"doors": 0}, "at least 1 door, got 0"),
        (EIGHT_A, {"doors": 5, "sizes": ((Size.SMALL, 4),)}, "adds up to 4 doors, not 5"),
        (EIGHT_A, {"doors": 1601}, r"at most 1600 \(32 boards of 50 locks\)"),
        (KERONG, {"doors": 257}, r"at most 256 \(16 boards of 16 locks\)"),
        (KERONG, {"doors": 4, "locks_per_board": 17}, "have 1-16 locks, not 17"),
        (KERONG, {"doors": 4, "boards": ((16, 4),)}, "addresses are 0-15, not 16"),
        (EIGHT_A, {"doors": 4, "boards": ((0, 4),)}, "addresses are 1-32, not 0"),
        (EIGHT_A, {"doors": 4, "boards": ((1, 51),)}, "have 1-50 locks, not 51"),
        (EIGHT_A, {"doors": 4, "boards": ((1, 2), (1, 2))}, "board 1 appears twice"),
        (EIGHT_A, {"doors": 9, "boards": ((1, 4), (2, 4))}, "8 locks in all, too few for 9"),
        (EIGHT_A, {"doors": 9, "boards": ()}, "board list is empty"),
    ],
)
def test_impossible_banks_are_refused(
    protocol: BoardProtocol, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(LayoutError, match=message):
        BankLayout.plan(protocol, **kwargs)  # type: ignore[arg-type]


def test_an_unknown_door_names_the_doors_there_are() -> None:
    with pytest.raises(LayoutError, match="no door 4; doors are 1-3"):
        BankLayout.plan(EIGHT_A, doors=3).door(4)


@pytest.mark.parametrize("protocol", [EIGHT_A, KERONG])
def test_the_kiosk_configuration_maps_every_door_to_its_lock(protocol: BoardProtocol) -> None:
    layout = BankLayout.plan(protocol, doors=40, locks_per_board=16)

    config = parse_door_bank_config(layout.kiosk_config("/dev/pts/9", "/dev/pts/8")["doors"])

    assert config.serial is not None
    assert config.serial.port == "/dev/pts/9"
    assert config.serial.protocol is protocol
    door_map = config.serial.door_map
    assert door_map.doors == tuple(range(1, 41))
    assert all(door_map.address(d.number) == LockAddress(d.board, d.lock) for d in layout.doors)


def test_the_toml_snippet_is_the_same_configuration_with_sizes_in_comments() -> None:
    layout = BankLayout.plan(
        KERONG, doors=20, sizes=parse_size_mix("small=8,medium=6,large=4,xlarge=2")
    )
    polarity = LockBitPolarity.SET_MEANS_OPEN

    text = layout.kiosk_toml('/tmp/odd "name"', "/dev/pts/8", lock_bit_polarity=polarity)

    parsed = tomllib.loads(text)
    assert parsed == layout.kiosk_config(
        '/tmp/odd "name"', "/dev/pts/8", lock_bit_polarity=polarity
    )
    serial = parse_door_bank_config(parsed["doors"]).serial
    assert serial is not None
    assert serial.lock_bit_polarity is polarity
    assert parse_scanner_config(parsed["scanner"]).port == "/dev/pts/8"
    assert "# 9-14      medium  0      9-14" in text
    assert "# 17-18     large   1      1-2" in text
    assert layout.sizes()["20"] == "xlarge"
