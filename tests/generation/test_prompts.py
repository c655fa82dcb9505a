from __future__ import annotations

import pytest

from generation.prompts import (
    check_rows_fit_template,
    parse_csv,
    render,
    template_placeholders,
)
from studio.errors import InputError


def test_it_lists_placeholders_in_order_of_first_use():
    assert template_placeholders("{a} and {b}, again {a}") == ["a", "b"]


def test_it_treats_doubled_braces_as_literal_text():
    assert template_placeholders("{{not a field}} {name}") == ["name"]


@pytest.mark.parametrize(
    "body, fragment",
    [
        ("{0}", "not a column name"),
        ("{row.name}", "not a column name"),
        ("{}", "not a column name"),
        ("{name!r}", "format or conversion"),
        ("{price:.2f}", "format or conversion"),
        ("a {unclosed", "literal brace"),
        ("closing } alone", "literal brace"),
    ],
)
def test_it_refuses_a_template_with_a_malformed_placeholder(body, fragment):
    with pytest.raises(InputError) as error:
        template_placeholders(body, field_name="body")
    assert str(error.value).startswith("body:")
    assert fragment in str(error.value)


def test_it_renders_a_row_into_the_template():
    assert render("a {color} {name}", {"color": "red", "name": "Aero"}) == "a red Aero"


def test_it_parses_a_utf8_csv_with_a_byte_order_mark():
    parsed = parse_csv("\ufeffsku,name\nA-1,Dép Sài Gòn\n".encode(), max_rows=10)
    assert parsed.columns == ["sku", "name"]
    assert parsed.rows == [{"sku": "A-1", "name": "Dép Sài Gòn"}]


def test_it_skips_blank_lines():
    parsed = parse_csv(b"sku,name\n\nA-1,x\n,\n", max_rows=10)
    assert len(parsed.rows) == 1


def test_it_names_the_line_of_bytes_neither_utf8_nor_windows_1252():
    with pytest.raises(InputError) as error:
        parse_csv(b"sku,name\nA-1,ok\nA-2,caf\x81\n", max_rows=10)
    assert "line 3, byte 23 (0x81) is neither UTF-8 nor Windows-1252" in str(error.value)


def test_it_refuses_an_empty_file():
    with pytest.raises(InputError, match="csv: the file is empty"):
        parse_csv(b"", max_rows=10)


def test_it_refuses_a_header_without_rows():
    with pytest.raises(InputError, match="csv: the file has a header but no rows"):
        parse_csv(b"sku,name\n", max_rows=10)


def test_it_refuses_more_rows_than_the_limit():
    data = b"sku\n" + b"".join(f"s{i}\n".encode() for i in range(4))
    with pytest.raises(InputError, match="more than 3 rows"):
        parse_csv(data, max_rows=3)


def test_it_refuses_duplicate_and_unnamed_columns():
    with pytest.raises(InputError) as error:
        parse_csv(b"sku,,sku\n1,2,3\n", max_rows=10)
    assert "column 2 in the header has no name" in str(error.value)
    assert "column 'sku' appears twice" in str(error.value)


def test_it_names_the_row_with_the_wrong_number_of_values():
    with pytest.raises(InputError, match=r"row 2 \(line 3\) has 3 values, the header has 2"):
        parse_csv(b"sku,name\n1,a\n2,b,extra\n", max_rows=10)


def test_it_names_the_missing_column_and_the_placeholder_needing_it():
    parsed = parse_csv(b"sku,name\n1,a\n", max_rows=10)
    with pytest.raises(InputError) as error:
        check_rows_fit_template(parsed, ["name", "color"])
    assert "column 'color' is missing; the template needs {color}" in str(error.value)


def test_it_names_the_row_and_column_of_an_empty_value():
    parsed = parse_csv(b"sku,color\n1,red\n2,  \n", max_rows=10)
    with pytest.raises(InputError) as error:
        check_rows_fit_template(parsed, ["color"])
    assert error.value.messages() == [
        "csv: row 2, column 'color' is empty; the template needs {color}"
    ]
