"""The front end's machine XML: reading the real files, writing them back, refusing unsafe
or malformed input (parser level; the HTTP side is in test_admin.py)."""

from __future__ import annotations

import pytest
from defusedxml import ElementTree
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beatmachine.machines.document import (
    Instrument,
    MachineDocument,
    Note,
    Program,
)
from beatmachine.machines.xml import (
    BM_NS,
    INSTRUMENTS_NS,
    MAX_XML_BYTES,
    MachineXmlError,
    machine_to_xml,
    parse_machine_xml,
)
from tests.machines.helpers import (
    BILLION_LAUGHS,
    XXE,
    instrument_xml,
    machine_xml,
    program_xml,
    real_machine_xml,
)

SALSA_INSTRUMENTS = [
    "clave",
    "cowbell",
    "congas",
    "piano",
    "instructor",
    "bass",
    "timbales",
    "guiro",
    "bongos",
    "maracas",
]
MERENGUE_INSTRUMENTS = [
    "cowbell",
    "congas",
    "piano",
    "instructor",
    "bass",
    "guira",
    "tambora",
    "kickdrum",
]


def salsa() -> MachineDocument:
    return parse_machine_xml(real_machine_xml("salsa"))


def merengue() -> MachineDocument:
    return parse_machine_xml(real_machine_xml("merengue"))


def instrument(document: MachineDocument, instrument_id: str) -> Instrument:
    found = document.instrument(instrument_id)
    assert found is not None, f"{document.id} has no {instrument_id}"
    return found


def refusal(data: bytes) -> MachineXmlError:
    with pytest.raises(MachineXmlError) as caught:
        parse_machine_xml(data)
    return caught.value


# --- the real files ----------------------------------------------------------------


def test_salsa_machine_level_fields_are_read() -> None:
    document = salsa()

    assert document.id == "salsa"
    assert document.flavor == "Salsa"
    assert document.bpm == 180
    assert document.key_note == 0
    assert document.machine_key == "SALSA-DEFAULT"
    assert document.machine_version == 2
    assert document.volume == 0.5
    assert document.enabled is False
    assert document.clave32 is False
    assert document.auto_control_enabled is True
    assert document.auto_control_interval == 32
    assert document.title == ""
    assert document.author == ""


def test_salsa_instruments_are_the_uncommented_ones_in_file_order() -> None:
    assert [i.id for i in salsa().instruments] == SALSA_INSTRUMENTS


def test_salsa_clave_is_read_with_its_programs() -> None:
    clave = salsa().instruments[0]

    assert clave.id == "clave"
    assert clave.title == "Clave"
    assert clave.enabled is True
    assert clave.active_program == 0
    assert clave.respects_clave is True
    assert [p.title for p in clave.programs] == ["Son Clave", "Rumba Clave"]
    son = clave.programs[0]
    assert son.length == 16
    assert [(n.index, n.pitch) for n in son.notes] == [(2, 0), (4, 0), (8, 0), (11, 0), (14, 0)]
    assert all(n.velocity is None for n in son.notes)


def test_instrument_without_volume_gets_full_volume() -> None:
    document = salsa()

    assert instrument(document, "clave").volume == 1.0
    assert instrument(document, "piano").volume == 0.4
    assert instrument(document, "maracas").volume == 0.2


def test_missing_instrument_elements_take_the_front_end_defaults() -> None:
    instructor = instrument(salsa(), "instructor")  # has no respectsClave, keyed..., volume

    assert instructor.respects_clave is False
    assert instructor.keyed_instrument is False
    assert instructor.pitch_offset == 0
    assert instructor.play_both_hands is False
    assert instructor.left_hand_pitch_offset == 0
    assert instructor.volume == 1.0


def test_empty_instrument_takes_every_default() -> None:
    document = parse_machine_xml(machine_xml(instrument_xml("")))

    only = document.instruments[0]
    assert only.model_dump(exclude={"element"}) == {
        "id": "clave",
        "title": "Clave",
        "enabled": False,
        "active_program": 0,
        "respects_clave": False,
        "keyed_instrument": False,
        "pitch_offset": 0,
        "play_both_hands": False,
        "left_hand_pitch_offset": 0,
        "volume": 1.0,
        "visible": None,
        "tonic_plus8": None,
        "comment": None,
        "programs": [],
    }


def test_keyed_instrument_fields_are_read() -> None:
    piano = instrument(salsa(), "piano")

    assert piano.keyed_instrument is True
    assert piano.play_both_hands is True
    assert piano.pitch_offset == 60
    assert piano.left_hand_pitch_offset == 48
    assert piano.active_program == 1
    assert len(piano.programs) == 21
    assert piano.programs[4].title == 'Montuno from "Nadie Como Ella"'
    assert piano.programs[4].tonic_pitch == -12
    first = piano.programs[0].notes[0]
    assert (first.index, first.pitch, first.piano_tonic) == (0, 0, True)


def test_note_velocity_and_length_are_read_when_present() -> None:
    document = salsa()

    complex_cowbell = instrument(document, "cowbell").programs[0]
    assert complex_cowbell.title == "Complex Cowbell"
    assert [n.velocity for n in complex_cowbell.notes[:3]] == [None, 0.2, None]
    bass_note = instrument(document, "bass").programs[0].notes[0]
    assert (bass_note.index, bass_note.pitch, bass_note.length) == (3, 5, 2.0)


def test_non_ascii_titles_and_entities_are_decoded() -> None:
    document = salsa()

    assert instrument(document, "guiro").title == "Güiro"
    assert instrument(document, "timbales").programs[0].title == "Cáscara"
    assert instrument(document, "piano").programs[3].title == (
        'Montuno from "Ain\'t Nobody" by Alex Wilson'
    )


def test_merengue_machine_level_fields_are_read() -> None:
    document = merengue()

    assert document.id == "merengue"
    assert document.flavor == "Merengue"
    assert document.title == "Merengue Beat Machine"
    assert document.author == "Uri Shaked"
    assert document.bpm == 160
    assert document.key_note == 8
    assert document.machine_key == "MERENGUE-DEFAULT"
    assert document.auto_control_interval == 64


def test_merengue_instruments_have_lower_cased_element_names_as_ids() -> None:
    document = merengue()

    assert [i.id for i in document.instruments] == MERENGUE_INSTRUMENTS
    kick = instrument(document, "kickdrum")
    assert kick.title == "Kick Drum"
    assert kick.element_name == "KickDrum"
    assert instrument(document, "guira").title == "Güira"


def test_merengue_elements_in_any_order_are_read() -> None:
    cowbell = instrument(merengue(), "cowbell")  # programs come before volume/enabled here

    assert cowbell.volume == 0.53
    assert cowbell.enabled is True
    assert cowbell.active_program == 1
    assert cowbell.respects_clave is False
    assert [p.title for p in cowbell.programs] == ["Complex Cowbell", "Simple Cowbell"]


def test_merengue_two_handed_piano_is_read() -> None:
    piano = instrument(merengue(), "piano")

    assert piano.tonic_plus8 is True
    assert piano.enabled is True
    program = piano.programs[0]
    assert (program.title, program.length, program.separate_hands) == ("Merengue I-iv", 32, True)
    first = program.notes[0]
    assert (first.index, first.pitch, first.hand) == (1, 0, "left")
    assert {n.hand for n in program.notes} == {"left", "right"}


def test_machine_id_can_be_given_instead_of_the_flavor() -> None:
    document = parse_machine_xml(real_machine_xml("salsa"), "salsa-classic")

    assert document.id == "salsa-classic"
    assert document.flavor == "Salsa"


# --- export and round trips --------------------------------------------------------


@pytest.mark.parametrize("name", ["salsa", "merengue"])
def test_real_file_survives_export_and_import(name: str) -> None:
    document = parse_machine_xml(real_machine_xml(name))

    again = parse_machine_xml(machine_to_xml(document), document.id)

    assert again == document


def test_export_uses_the_front_end_namespaces_and_element_names() -> None:
    root = ElementTree.fromstring(machine_to_xml(merengue()))

    assert root.tag == f"{{{BM_NS}}}Machine"
    instruments = root.find(f"{{{BM_NS}}}instrumentList")
    assert instruments is not None
    names = [child.tag for child in instruments]
    assert names[-1] == f"{{{INSTRUMENTS_NS}}}KickDrum"
    assert names[0] == f"{{{INSTRUMENTS_NS}}}Cowbell"
    assert instruments[-1].get("title") == "Kick Drum"
    assert root.findtext(f"{{{BM_NS}}}keyNote") == "8"
    assert root.findtext(f"{{{BM_NS}}}flavor") == "Merengue"


# Text the XML format can hold: XML 1.0 characters (no surrogates or C0 controls but
# tab, newline and carriage return), with no surrounding white space.
_xml_char = st.characters(
    exclude_categories=["Cs"],
    exclude_characters="".join(chr(c) for c in range(0x20) if chr(c) not in "\t\n\r")
    + "\ufffe\uffff",
)


def _text(max_size: int, min_size: int = 0) -> st.SearchStrategy[str]:
    return st.text(_xml_char, min_size=min_size, max_size=max_size)


_small_ints = st.integers(min_value=-127, max_value=127)
_unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@st.composite
def _programs(draw: st.DrawFn) -> Program:
    length = draw(st.integers(min_value=1, max_value=64))
    notes = draw(
        st.lists(
            st.builds(
                Note,
                index=st.integers(min_value=0, max_value=length - 1),
                pitch=_small_ints,
                velocity=st.none() | _unit,
                length=st.none()
                | st.floats(min_value=0.0, max_value=256, exclude_min=True, allow_nan=False),
                hand=st.none() | st.sampled_from(["left", "right"]),
                piano_tonic=st.none() | st.booleans(),
            ),
            max_size=6,
        )
    )
    return Program(
        title=draw(_text(40)),
        length=length,
        notes=notes,
        separate_hands=draw(st.none() | st.booleans()),
        tonic_pitch=draw(st.none() | _small_ints),
    )


_slugs = st.from_regex(r"\A[a-z][a-z0-9_-]{0,20}\Z")


@st.composite
def _instruments(draw: st.DrawFn, instrument_id: str) -> Instrument:
    programs = draw(st.lists(_programs(), max_size=3))
    active = draw(st.integers(min_value=0, max_value=max(0, len(programs) - 1)))
    return Instrument(
        id=instrument_id,
        title=draw(_text(40)),
        enabled=draw(st.booleans()),
        active_program=active,
        respects_clave=draw(st.booleans()),
        keyed_instrument=draw(st.booleans()),
        pitch_offset=draw(_small_ints),
        play_both_hands=draw(st.booleans()),
        left_hand_pitch_offset=draw(_small_ints),
        volume=draw(_unit),
        visible=draw(st.none() | st.booleans()),
        tonic_plus8=draw(st.none() | st.booleans()),
        comment=draw(st.none() | _text(60)),
        programs=programs,
    )


@st.composite
def machine_documents(draw: st.DrawFn) -> MachineDocument:
    ids = draw(st.lists(_slugs, max_size=4, unique=True))
    return MachineDocument(
        id=draw(_slugs),
        title=draw(_text(60)),
        flavor=draw(_text(50, min_size=1).filter(str.strip)),
        description=draw(_text(200)),
        bpm=draw(st.integers(min_value=40, max_value=300)),
        key_note=draw(st.integers(min_value=0, max_value=11)),
        instruments=[draw(_instruments(i)) for i in ids],
        machine_key=draw(st.none() | _text(30)),
        author=draw(st.none() | _text(30)),
        time_created=draw(st.none() | _text(30)),
        parent_machine=draw(st.none() | _text(30)),
        machine_version=draw(st.none() | st.integers(min_value=-(2**31), max_value=2**31)),
        enabled=draw(st.none() | st.booleans()),
        clave32=draw(st.none() | st.booleans()),
        volume=draw(st.none() | _unit),
        auto_control_enabled=draw(st.none() | st.booleans()),
        auto_control_interval=draw(st.none() | st.integers(min_value=0, max_value=10_000)),
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(machine_documents())
def test_any_machine_survives_export_and_import(document: MachineDocument) -> None:
    again = parse_machine_xml(machine_to_xml(document), document.id)

    assert again == document


# --- unsafe input ---------------------------------------------------------------------


def test_billion_laughs_is_refused() -> None:
    error = refusal(BILLION_LAUGHS)

    assert "unsafe XML" in str(error)


def test_external_entity_is_refused() -> None:
    error = refusal(XXE)

    assert "unsafe XML" in str(error)
    assert "root:" not in str(error)


def test_external_dtd_is_refused() -> None:
    data = (
        b'<?xml version="1.0"?>\n<!DOCTYPE m SYSTEM "http://127.0.0.1:9/evil.dtd">\n'
        + machine_xml().split(b"\n", 1)[1]
    )

    assert "unsafe XML" in str(refusal(data))


def test_file_over_two_mebibytes_is_refused() -> None:
    padding = b"<!--" + b"x" * MAX_XML_BYTES + b"-->"
    data = machine_xml().replace(b"<bm:instrumentList>", padding + b"<bm:instrumentList>")
    assert len(data) > MAX_XML_BYTES

    error = refusal(data)

    assert str(MAX_XML_BYTES) in str(error)


def test_file_of_exactly_two_mebibytes_is_read() -> None:
    base = machine_xml()
    padding = b"<!--" + b"x" * (MAX_XML_BYTES - len(base) - 7) + b"-->"
    data = base.replace(b"<bm:instrumentList>", padding + b"<bm:instrumentList>")
    assert len(data) == MAX_XML_BYTES

    assert parse_machine_xml(data).flavor == "Test"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"<bm:Machine xmlns:bm='http://www.salsabeatmachine.org/xns/bm'>",
        b"not xml at all",
        b"<a><b></a></b>",
    ],
    ids=["empty", "unclosed", "text", "crossed"],
)
def test_not_well_formed_xml_is_refused(data: bytes) -> None:
    assert "not well-formed" in str(refusal(data))


# --- wrong structure names the element at fault ---------------------------------------


@pytest.mark.parametrize(
    ("data", "element"),
    [
        (
            machine_xml(instrument_xml(program_xml('<bm:Note pitch="0" />'))),
            "Clave/programs/Program[0]/Note[0]",
        ),
        (
            machine_xml(
                instrument_xml(program_xml('<bm:Note index="1" pitch="0" /><bm:Note index="2" />'))
            ),
            "Clave/programs/Program[0]/Note[1]",
        ),
        (
            machine_xml(instrument_xml("<tempo>3</tempo>")),
            "Clave/tempo",
        ),
        (
            machine_xml(instrument_xml("<activeProgram>1</activeProgram>" + program_xml())),
            "Clave",
        ),
        (
            machine_xml(instrument_xml("<activeProgram>1</activeProgram>")),
            "Clave",
        ),
        (
            machine_xml(instrument_xml(program_xml('<bm:Note index="4" pitch="0" />', length=4))),
            "Clave/programs/Program[0]",
        ),
        (
            machine_xml(instrument_xml(program_xml('<bm:Note index="x" pitch="0" />'))),
            "Clave/programs/Program[0]/Note[0]@index",
        ),
        (
            machine_xml(instrument_xml(program_xml('<bm:Note index="0" pitch="0" loud="1" />'))),
            "Clave/programs/Program[0]/Note[0]",
        ),
        (
            machine_xml(instrument_xml("<enabled>maybe</enabled>")),
            "Clave/enabled",
        ),
        (
            machine_xml(
                instrument_xml(
                    '<programs><bm:Program length="4"><bm:Note index="0" pitch="0" />'
                    "</bm:Program></programs>"
                )
            ),
            "Clave/programs/Program[0]",
        ),
        (
            machine_xml(instrument_xml("<programs><bm:Pattern /></programs>")),
            "Clave/programs/Program[0]",
        ),
        (
            machine_xml(instrument_xml("") + instrument_xml("", name="CLAVE")),
            "Machine",
        ),
        (
            machine_xml(machine_fields="<bm:flavor>Test</bm:flavor><bm:tempo>9</bm:tempo>"),
            "Machine/tempo",
        ),
        (
            machine_xml(machine_fields="<bm:flavor>Test</bm:flavor><bm:keyNote>12</bm:keyNote>"),
            "Machine",
        ),
        (
            machine_xml(machine_fields="<bm:bpm>120</bm:bpm>"),
            "Machine/flavor",
        ),
        (
            b'<Machine xmlns="urn:other"><flavor>Salsa</flavor></Machine>',
            "Machine",
        ),
    ],
    ids=[
        "note-without-index",
        "second-note-without-pitch",
        "unknown-instrument-element",
        "active-program-out-of-range",
        "active-program-without-programs",
        "note-index-at-length",
        "note-index-not-a-number",
        "unknown-note-attribute",
        "bad-boolean",
        "program-without-title",
        "not-a-program",
        "duplicate-instrument",
        "unknown-machine-element",
        "key-note-out-of-range",
        "flavor-missing",
        "wrong-root-namespace",
    ],
)
def test_wrong_structure_names_the_element_at_fault(data: bytes, element: str) -> None:
    assert refusal(data).element == element


def test_instrument_outside_the_instruments_namespace_is_refused() -> None:
    data = machine_xml('<Clave title="Clave" xmlns="http://www.salsabeatmachine.org/xns/bm" />')

    assert refusal(data).element == "Clave"


def test_instrument_title_defaults_to_its_element_name() -> None:
    data = machine_xml(
        '<Shaker xmlns="http://www.salsabeatmachine.org/xns/instruments"><enabled>true</enabled>'
        "</Shaker>"
    )

    only = parse_machine_xml(data).instruments[0]

    assert (only.id, only.title, only.enabled) == ("shaker", "Shaker", True)
