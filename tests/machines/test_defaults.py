"""The project's own default machines (src/beatmachine/machines/defaults): they parse and
validate, carry their flavor, hold the rhythms they promise, and export without loss."""

from __future__ import annotations

from pathlib import Path

import pytest

from beatmachine.machines.bootstrap import DEFAULTS_DIR
from beatmachine.machines.document import Instrument, MachineDocument, Program
from beatmachine.machines.xml import machine_to_xml, parse_machine_xml

DEFAULTS = {"salsa": "Salsa", "merengue": "Merengue"}


def load(machine_id: str) -> MachineDocument:
    # The same call bootstrap makes: the id comes from the file name.
    path: Path = DEFAULTS_DIR / f"{machine_id}.xml"
    return parse_machine_xml(path.read_bytes(), path.stem.lower())


def instrument(document: MachineDocument, instrument_id: str) -> Instrument:
    found = document.instrument(instrument_id)
    assert found is not None, f"{document.id} has no {instrument_id}"
    return found


def steps(program: Program, pitch: int | None = None) -> list[int]:
    return sorted(n.index for n in program.notes if pitch is None or n.pitch == pitch)


def test_the_defaults_folder_holds_exactly_salsa_and_merengue() -> None:
    assert sorted(p.name for p in DEFAULTS_DIR.glob("*.xml")) == ["merengue.xml", "salsa.xml"]


@pytest.mark.parametrize("machine_id", DEFAULTS)
def test_each_default_parses_with_its_id_title_and_flavor(machine_id: str) -> None:
    document = load(machine_id)

    assert document.id == machine_id
    assert document.title == DEFAULTS[machine_id]
    assert document.flavor == DEFAULTS[machine_id]
    assert document.machine_key == f"{machine_id.upper()}-BM-DEFAULT"
    assert document.author == "SalsaNor Beat Machine"
    assert document.description


def test_salsa_has_the_salsa_instruments() -> None:
    assert [i.element_name for i in load("salsa").instruments] == [
        "Clave",
        "Cowbell",
        "Congas",
        "Bongos",
        "Guiro",
        "Maracas",
        "Timbales",
        "Bass",
        "Piano",
    ]


def test_merengue_has_the_merengue_instruments() -> None:
    assert [i.element_name for i in load("merengue").instruments] == [
        "Tambora",
        "Guira",
        "Bass",
        "Piano",
        "Congas",
        "Cowbell",
    ]


def test_salsa_clave_starts_on_a_3_2_son_clave() -> None:
    clave = instrument(load("salsa"), "clave")

    first = clave.programs[0]
    assert clave.enabled is True
    assert clave.respects_clave is True
    assert clave.active_program == 0
    assert first.title == "Son Clave 3-2"
    assert first.length == 16
    # One step per eighth note over two bars: 1, 2-and, 4 | 2, 3.
    assert steps(first) == [0, 3, 6, 10, 12]


def test_salsa_clave_offers_2_3_son_and_both_rumba_claves() -> None:
    programs = {p.title: steps(p) for p in instrument(load("salsa"), "clave").programs}

    assert programs == {
        "Son Clave 3-2": [0, 3, 6, 10, 12],
        "Son Clave 2-3": [2, 4, 8, 11, 14],
        "Rumba Clave 3-2": [0, 3, 7, 10, 12],
        "Rumba Clave 2-3": [2, 4, 8, 11, 15],
    }


def test_salsa_bass_tumbao_plays_on_2_and_and_4() -> None:
    bass = instrument(load("salsa"), "bass")

    tumbao = bass.programs[bass.active_program]
    assert bass.keyed_instrument is True
    assert bass.pitch_offset == 36
    assert steps(tumbao) == [3, 6, 11, 14]


def test_salsa_active_conga_tumbao_slaps_on_2_and_opens_on_4_and_4_and() -> None:
    congas = instrument(load("salsa"), "congas")

    tumbao = congas.programs[congas.active_program]
    slap, conga_open, tumba_open = 2, 3, 4
    assert steps(tumbao, slap) == [2, 10]
    assert steps(tumbao, conga_open) == [6, 7]
    assert steps(tumbao, tumba_open) == [14, 15]


def test_salsa_piano_is_a_keyed_montuno_from_middle_c() -> None:
    piano = instrument(load("salsa"), "piano")

    assert piano.keyed_instrument is True
    assert piano.pitch_offset == 60
    assert piano.programs[piano.active_program].title == "Montuno I-IV-V-IV"


@pytest.mark.parametrize("machine_id", DEFAULTS)
def test_every_instrument_has_two_to_four_programs_and_a_valid_active_program(
    machine_id: str,
) -> None:
    for item in load(machine_id).instruments:
        assert 2 <= len(item.programs) <= 4, item.id
        assert 0 <= item.active_program < len(item.programs), item.id


@pytest.mark.parametrize("machine_id", DEFAULTS)
def test_every_program_has_an_even_length_and_notes(machine_id: str) -> None:
    # The front end plays two steps per beat, so an odd length would lose its last step.
    for item in load(machine_id).instruments:
        for program in item.programs:
            assert program.length % 2 == 0, f"{item.id}/{program.title}"
            assert program.notes, f"{item.id}/{program.title}"


@pytest.mark.parametrize("machine_id", DEFAULTS)
def test_only_the_bass_and_piano_are_keyed(machine_id: str) -> None:
    keyed = [i.id for i in load(machine_id).instruments if i.keyed_instrument]

    assert keyed == ["bass", "piano"]


@pytest.mark.parametrize("machine_id", DEFAULTS)
def test_export_round_trip_is_lossless(machine_id: str) -> None:
    document = load(machine_id)

    exported = machine_to_xml(document)

    assert parse_machine_xml(exported, machine_id) == document
    assert machine_to_xml(parse_machine_xml(exported, machine_id)) == exported
