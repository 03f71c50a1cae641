"""The protocol's schema: what it refuses, how it says so, and that docs/protocol.md matches it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from browserinterface import schema as S
from browserinterface.protocol import MAX_TEXT_BYTES

DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"


def refused(text: str | bytes) -> S.MessageError:
    with pytest.raises(S.MessageError) as info:
        S.decode_client(text)
    return info.value


def test_valid_messages_decode_to_their_structs() -> None:
    msg = S.decode_client('{"type":"audio","on":true,"channels":[0,3],"id":4}')
    assert msg == S.Audio(on=True, channels=[0, 3], id=4)
    assert S.decode_client('{"type":"change_config","volume":61}') == S.ChangeConfig(volume=61)
    assert S.ChangeConfig(rate=16000, volume=3).fields() == {"rate": 16000, "volume": 3}


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('{"type":"audio","on":true,"channels":[true]}', "channels[0]"),
        ('{"type":"audio","on":1}', "on"),
        ('{"type":"audio","on":true,"channels":[]}', "channels"),
        ('{"type":"audio","on":true,"channels":[-1]}', "channels[0]"),
        ('{"type":"change_config","rates":16000}', "rates"),
        ('{"type":"change_config","volume":"loud"}', "volume"),
        ('{"type":"change_config","rate":1e999}', "rate"),
        ('{"type":"change_config","rate":16000.5}', "rate"),
        ('{"type":"stream_start"}', "port"),
        ('{"type":"stream_start","port":5004,"address":"192.0.2.1"}', "address"),
        ('{"type":"add_handler","name":"","handler_type":"base:graph:line"}', "name"),
        ('{"type":"output","stream":"stdin","text":"x"}', "stream"),
        ('{"type":"hello","protocol":"1"}', "protocol"),
        ('{"type":"ping","id":-1}', "id"),
        ('{"type":"ping","id":true}', "id"),
    ],
)
def test_a_wrong_field_is_named(text: str, field: str) -> None:
    error = refused(text)
    assert error.code == "bad_message"
    assert error.field == field, error
    assert field.split("[", maxsplit=1)[0] in str(error)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused_anywhere(literal: str) -> None:
    text = f'{{"type":"add_handler","name":"x","handler_type":"t","parameters":{{"min":{literal}}}}}'
    error = refused(text)
    assert error.code == "bad_message"
    assert "NaN and Infinity are not numbers in JSON" in str(error)
    error = refused(f'{{"type":"handler_data","handler":"h1","data":[{{"x":1,"y":{literal}}}]}}')
    assert "NaN and Infinity" in str(error)


def test_numbers_beyond_a_double_are_refused_inside_free_data() -> None:
    assert refused('{"type":"handler_data","handler":"h1","data":[1e999]}').code == "bad_message"


def test_deep_nesting_and_size_are_bounded() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    assert "nested too deeply" in str(refused(f'{{"type":"handler_data","handler":"h1","data":{deep}}}'))
    params = '{"a":' * 20 + "1" + "}" * 20
    error = refused(f'{{"type":"add_handler","name":"x","handler_type":"t","parameters":{params},"id":3}}')
    assert error.field == "parameters" and error.request_id == 3
    assert refused("x" * (MAX_TEXT_BYTES + 1)).code == "too_large"


def test_unknown_and_shapeless_messages() -> None:
    error = refused('{"type":"fly"}')
    assert error.code == "unknown_type" and "hello" in str(error)
    for text in ("[1]", '"hello"', '{"type":5}', "{}", "{{{", b"\xff\xfe"):
        assert refused(text).code == "bad_message", text


def test_the_id_of_a_refused_request_is_kept_for_its_error() -> None:
    assert refused('{"type":"change_config","volume":"loud","id":9}').request_id == 9


def test_hello_tolerates_fields_it_does_not_know() -> None:
    msg = S.decode_client('{"type":"hello","protocol":1,"capabilities":["x"]}')
    assert isinstance(msg, S.Hello) and msg.role == "script"


def test_device_messages_tolerate_new_fields_and_name_unknown_types() -> None:
    msg = S.decode_device('{"type":"loss","blocks":1,"total":3,"newer":true}')
    assert msg == S.Loss(blocks=1, total=3)
    with pytest.raises(S.MessageError) as info:
        S.decode_device('{"type":"from_the_future"}')
    assert info.value.code == "unknown_type"


def _doc_tables() -> dict[str, dict[str, set[str]]]:
    """The message tables of docs/protocol.md: section -> type -> fields."""
    tables: dict[str, dict[str, set[str]]] = {}
    section = ""
    for line in DOC.read_text().splitlines():
        if line.startswith("## "):
            section = line[3:]
        elif section.startswith("Messages from") and re.match(r"^\| `\w+` \|", line):
            cells = [c.strip() for c in line.strip("|").split("|")]
            fields_cell = cells[1] if section == "Messages from clients" else cells[2]
            tables.setdefault(section, {})[cells[0].strip("`")] = set(re.findall(r"`(\w+)`", fields_cell))
    return tables


def _fields(cls: type[S.ClientMessage] | type[S.DeviceMessage], keep_id: bool) -> set[str]:
    names = set(cls.__struct_fields__)
    return names if keep_id else names - {"id"}


def test_the_documented_tables_are_the_schema() -> None:
    tables = _doc_tables()
    client = {str(c.__struct_config__.tag): _fields(c, False) for c in S.CLIENT_MESSAGES}
    device = {str(c.__struct_config__.tag): _fields(c, True) for c in S.DEVICE_MESSAGES}
    assert tables["Messages from clients"] == client
    assert tables["Messages from the device"] == device


def test_every_example_in_the_protocol_doc_that_is_a_client_message_decodes() -> None:
    examples = re.findall(r"`(\{\"type\":\"(?:hello|audio|ping)\"[^`]*\})`", DOC.read_text())
    assert examples, "docs/protocol.md shows no example message"
    for text in examples:
        S.decode_client(json.dumps(json.loads(text)))
