"""Reading and writing the front end's machine XML format.

XML arrives from admins and files, so it is parsed as untrusted input: no DTDs
(hence no entity expansion and no external entities), no network, bounded size.
Missing elements take the defaults the front end applies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape, quoteattr

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring
from pydantic import ValidationError

from beatmachine.machines.document import Instrument, MachineDocument, Note, Program

BM_NS = "http://www.salsabeatmachine.org/xns/bm"
INSTRUMENTS_NS = "http://www.salsabeatmachine.org/xns/instruments"
MAX_XML_BYTES = 2 * 1024 * 1024

T = TypeVar("T")


class MachineXmlError(ValueError):
    """The XML is unsafe, malformed, or not a machine; `element` names the part at fault."""

    def __init__(self, message: str, element: str | None = None) -> None:
        super().__init__(message)
        self.element = element


def _bm(name: str) -> str:
    return f"{{{BM_NS}}}{name}"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def _convert(raw: str, convert: Callable[[str], T], where: str) -> T:
    try:
        return convert(raw.strip())
    except ValueError as exc:
        raise MachineXmlError(f"{where}: {raw.strip()!r} is not a valid value", where) from exc


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0", ""):
        return False
    raise ValueError(raw)


def _number(raw: str) -> float:
    return float(raw)


# Instrument child elements: XML name -> (document field, parser).
_INSTRUMENT_FIELDS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "enabled": ("enabled", _bool),
    "activeProgram": ("active_program", int),
    "respectsClave": ("respects_clave", _bool),
    "keyedInstrument": ("keyed_instrument", _bool),
    "pitchOffset": ("pitch_offset", int),
    "playBothHands": ("play_both_hands", _bool),
    "leftHandPitchOffset": ("left_hand_pitch_offset", int),
    "volume": ("volume", _number),
    "visible": ("visible", _bool),
    "tonicPlus8": ("tonic_plus8", _bool),
    "comment": ("comment", str),
}
_MACHINE_FIELDS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "machineId": ("machine_key", str),
    "title": ("title", str),
    "author": ("author", str),
    "timeCreated": ("time_created", str),
    "description": ("description", str),
    "parentMachine": ("parent_machine", str),
    "flavor": ("flavor", str),
    "bpm": ("bpm", int),
    "machineVersion": ("machine_version", int),
    "enabled": ("enabled", _bool),
    "clave32": ("clave32", _bool),
    "volume": ("volume", _number),
    "keyNote": ("key_note", int),
    "autoControlEnabled": ("auto_control_enabled", _bool),
    "autoControlInterval": ("auto_control_interval", int),
}
_NOTE_ATTRIBUTES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "index": ("index", int),
    "pitch": ("pitch", int),
    "velocity": ("velocity", _number),
    "length": ("length", _number),
    "hand": ("hand", str),
    "pianoTonic": ("piano_tonic", _bool),
}
_PROGRAM_ATTRIBUTES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "title": ("title", str),
    "length": ("length", int),
    "separateHands": ("separate_hands", _bool),
    "tonicPitch": ("tonic_pitch", int),
}


def _attributes(
    element: Element, known: dict[str, tuple[str, Callable[[str], Any]]], where: str
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, raw in element.attrib.items():
        if _namespace(name):  # xmlns-like or foreign attributes carry no machine data
            continue
        if name not in known:
            raise MachineXmlError(f"{where}: unknown attribute {name!r}", where)
        field, parse = known[name]
        values[field] = _convert(raw, parse, f"{where}@{name}")
    return values


def _parse_program(element: Element, where: str) -> Program:
    if element.tag != _bm("Program"):
        raise MachineXmlError(f"{where}: expected bm:Program, found {_local(element.tag)}", where)
    values = _attributes(element, _PROGRAM_ATTRIBUTES, where)
    for required in ("title", "length"):
        if required not in values:
            raise MachineXmlError(f"{where}: the {required!r} attribute is missing", where)
    notes: list[Note] = []
    for position, child in enumerate(element):
        note_where = f"{where}/Note[{position}]"
        if child.tag != _bm("Note"):
            raise MachineXmlError(
                f"{note_where}: expected bm:Note, found {_local(child.tag)}", note_where
            )
        note_values = _attributes(child, _NOTE_ATTRIBUTES, note_where)
        for required in ("index", "pitch"):
            if required not in note_values:
                raise MachineXmlError(
                    f"{note_where}: the {required!r} attribute is missing", note_where
                )
        notes.append(_validated(Note, note_values, note_where))
    return _validated(Program, {**values, "notes": notes}, where)


def _parse_instrument(element: Element) -> Instrument:
    name = _local(element.tag)
    where = name
    if _namespace(element.tag) != INSTRUMENTS_NS:
        raise MachineXmlError(f"{where}: instruments must be in the instruments namespace", where)
    values: dict[str, Any] = {"id": name.lower(), "element": name}
    values.update(_attributes(element, {"title": ("title", str)}, where))
    values.setdefault("title", name)
    programs: list[Program] = []
    for child in element:
        child_name = _local(child.tag)
        if child_name == "programs":
            for position, program in enumerate(child):
                programs.append(_parse_program(program, f"{where}/programs/Program[{position}]"))
        elif child_name in _INSTRUMENT_FIELDS:
            field, parse = _INSTRUMENT_FIELDS[child_name]
            values[field] = _convert(child.text or "", parse, f"{where}/{child_name}")
        else:
            raise MachineXmlError(
                f"{where}: unknown element {child_name!r}", f"{where}/{child_name}"
            )
    values["programs"] = programs
    return _validated(Instrument, values, where)


def _validated(model: type[T], values: dict[str, Any], where: str) -> T:
    try:
        return model.model_validate(values)  # type: ignore[attr-defined, no-any-return]
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        detail = f"{location}: {first['msg']}" if location else str(first["msg"])
        raise MachineXmlError(f"{where}: {detail}", where) from exc


def parse_machine_xml(data: bytes, machine_id: str | None = None) -> MachineDocument:
    """Parse a machine XML file; `machine_id` overrides the id derived from its flavor."""
    if len(data) > MAX_XML_BYTES:
        raise MachineXmlError(f"the file is larger than {MAX_XML_BYTES} bytes")
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise MachineXmlError(f"unsafe XML refused: {type(exc).__name__}") from exc
    except ParseError as exc:
        raise MachineXmlError(f"not well-formed XML: {exc}") from exc
    if root.tag != _bm("Machine"):
        raise MachineXmlError(
            f"the root element must be bm:Machine, not {_local(root.tag)}", _local(root.tag)
        )
    values: dict[str, Any] = {}
    instruments: list[Instrument] = []
    for child in root:
        name = _local(child.tag)
        if child.tag == _bm("instrumentList"):
            instruments.extend(_parse_instrument(instrument) for instrument in child)
        elif _namespace(child.tag) == BM_NS and name in _MACHINE_FIELDS:
            field, parse = _MACHINE_FIELDS[name]
            values[field] = _convert(child.text or "", parse, f"Machine/{name}")
        else:
            raise MachineXmlError(f"Machine: unknown element {name!r}", f"Machine/{name}")
    if not values.get("flavor"):
        raise MachineXmlError("Machine: the flavor element is missing", "Machine/flavor")
    values["id"] = machine_id or str(values["flavor"]).lower()
    values.setdefault("title", "")
    values["instruments"] = instruments
    return _validated(MachineDocument, values, "Machine")


# --- export -------------------------------------------------------------------------


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    return str(value)


def _element(name: str, value: object, indent: str) -> str:
    # A raw carriage return in element text would come back as a newline.
    return f"{indent}<{name}>{escape(_text(value), {chr(13): '&#13;'})}</{name}>\n"


def _attrs(pairs: list[tuple[str, object]]) -> str:
    return "".join(
        f" {name}={quoteattr(_text(value))}" for name, value in pairs if value is not None
    )


def machine_to_xml(document: MachineDocument) -> bytes:
    """Write a machine in the front end's XML format (both namespaces as its loader expects)."""
    out = [
        f'<?xml version="1.0" encoding="UTF-8"?>\n<bm:Machine xmlns="{BM_NS}" xmlns:bm="{BM_NS}">\n'
    ]
    out.append("\t<bm:instrumentList>\n")
    for instrument in document.instruments:
        name = instrument.element_name
        out.append(f'\t\t<{name} xmlns="{INSTRUMENTS_NS}" title={quoteattr(instrument.title)}>\n')
        for xml_name, (field, _parse) in _INSTRUMENT_FIELDS.items():
            value = getattr(instrument, field)
            if value is not None:
                out.append(_element(xml_name, value, "\t\t\t"))
        out.append("\t\t\t<programs>\n")
        for program in instrument.programs:
            attrs = _attrs([(n, getattr(program, f)) for n, (f, _p) in _PROGRAM_ATTRIBUTES.items()])
            out.append(f'\t\t\t\t<bm:Program xmlns="{BM_NS}"{attrs}>\n')
            for note in program.notes:
                note_attrs = _attrs(
                    [(n, getattr(note, f)) for n, (f, _p) in _NOTE_ATTRIBUTES.items()]
                )
                out.append(f"\t\t\t\t\t<bm:Note{note_attrs} />\n")
            out.append("\t\t\t\t</bm:Program>\n")
        out.append("\t\t\t</programs>\n")
        out.append(f"\t\t</{name}>\n")
    out.append("\t</bm:instrumentList>\n")
    for xml_name, (field, _parse) in _MACHINE_FIELDS.items():
        value = getattr(document, field)
        if value is not None:
            out.append(_element(f"bm:{xml_name}", value, "\t"))
    out.append("</bm:Machine>\n")
    return "".join(out).encode()
