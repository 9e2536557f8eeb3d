"""Templates that would exhaust memory or CPU: each is refused with exit 78 naming the template file (and line),
before the value it asks for is made. The limits are in `compose.limits`; the tests lower the step, time and
output limits for their run so that nothing large is ever made. No assertion on wall time."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.common import TLSFiles, configure
from tests.support.samples import OVERDUE
from xoromail_cli.cli import app
from xoromail_cli.compose import limits
from xoromail_cli.errors import ExitCode


def dry_run(runner: CliRunner, config_path: Path, tls: TLSFiles, folder: Path, body: str) -> tuple[int, str]:
    """`send --dry-run` of one overdue-invoice with `body` as the custom body.txt (after a first line)."""
    base = configure(config_path, None, tls)
    events = folder / "config" / "xoromail" / "templates" / "overdue-invoice"
    events.mkdir(parents=True, exist_ok=True)
    (events / "body.txt").write_text(f"Dear {{{{ customer_name }}}},\n{body}\n", encoding="utf-8")
    result = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--to", "c@client.test", *OVERDUE,
                                 "--dry-run"])
    return result.exit_code, result.output.replace("\n", "")


@pytest.mark.parametrize("payload", [
    "{{ 'a' * 10**9 }}",
    "{{ [1, 2] * 10**9 }}",
    "{{ 2 ** 100000000 }}",
    "{{ 10 ** 5000 }}",
    "{{ '%*s' % (10**9, 'a') }}",
    "{{ '%999999999s' % 'a' }}",
    "{{ '%.999999999f' % 1.5 }}",
    "{{ 'a' | center(10**9) }}",
    "{{ 'a\\nb' | indent(10**9, true) }}",
    "{{ ('a ' * 400000) | wordwrap(1, wrapstring='xxxxxxxxxx') }}",
    "{{ '%*s' | format(10**9, 'a') }}",
    "{{ ('x' * 1000) | replace('', 'y' * 1000) }}",
    "{{ 'a'.center(10**9) }}",
    "{{ 'a'.zfill(10**9) }}",
    "{{ ('\\t' * 1000).expandtabs(10**6) }}",
    "{{ '{:>999999999}'.format('a') }}",
    "{{ '{:{w}}'.format('a', w=10**9) }}",
    "{{ ('x' * 1000).replace('', 'y' * 1000) }}",
    "{% set x = 'a' * 900000 %}{{ [x, x, x] | join }}",
    "{% set x = 'a' * 900000 %}{{ ''.join([x, x]) }}",
    "{% set ns = namespace(x='a') %}{% for i in range(100) %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}",
    "{% set ns = namespace(x='a') %}{% for i in range(100) %}{% set ns.x = ns.x + ns.x %}{% endfor %}",
    "{% macro f(x) %}{{ f(x ~ x) }}{% endmacro %}{{ f('a') }}",
    "{{ range(100000) | map('center', 1000) | join }}",
    "{{ lipsum(1000000) }}",
    "{{ [1] | batch(10**8, 'x') | list }}",
    "{% set y = 'a' * 900000 %}{{ y ~ y }}",
    "{% set y = 'a' * 900000 %}{% set z = [y, y] %}",  # literals of literals would multiply: each is measured
    "{% set y = 'a' * 900000 %}{% set z = {'a': y, 'b': y} %}",
    "{% set y = 'a' * 900000 %}{{ '%s%s' % (y, y) }}",
])
def test_a_template_asking_for_a_huge_value_is_refused_before_it_is_made(
        runner: CliRunner, tls: TLSFiles, config_path: Path, isolated_environment: Path, payload: str) -> None:
    code, output = dry_run(runner, config_path, tls, isolated_environment, payload)
    assert code == ExitCode.CONFIG, output
    assert "body.txt:2:" in output and "a template of overdue-invoice" in output
    assert "more than" in output or "may not" in output


def test_loops_count_their_iterations_against_the_step_budget(
        runner: CliRunner, tls: TLSFiles, config_path: Path, isolated_environment: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    nested = "{% for i in range(100) %}{% for j in range(100) %}{% endfor %}{% endfor %}done"
    monkeypatch.setattr(limits, "MAX_STEPS", 20_000)
    assert dry_run(runner, config_path, tls, isolated_environment, nested)[0] == 0  # 10,100 iterations: fine
    monkeypatch.setattr(limits, "MAX_STEPS", 5_000)
    code, output = dry_run(runner, config_path, tls, isolated_environment, nested)
    assert code == ExitCode.CONFIG, output
    assert "body.txt:2:" in output and "more than 5,000 steps" in output


@pytest.mark.parametrize("payload", [
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}",  # 2**60 calls
    "{% for x in [[1]] recursive %}{{ loop(range(100000)) if x is iterable else '' }}{% endfor %}",
    "{{ range(100000) | map('string') | list | length }}",
])
def test_calls_recursive_loops_and_filter_items_count_too(
        runner: CliRunner, tls: TLSFiles, config_path: Path, isolated_environment: Path,
        monkeypatch: pytest.MonkeyPatch, payload: str) -> None:
    monkeypatch.setattr(limits, "MAX_STEPS", 5_000)
    code, output = dry_run(runner, config_path, tls, isolated_environment, payload)
    assert code == ExitCode.CONFIG, output
    assert "more than 5,000 steps" in output


def test_a_render_past_its_deadline_stops_at_its_next_step(
        runner: CliRunner, tls: TLSFiles, config_path: Path, isolated_environment: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "RENDER_SECONDS", 0.0)  # already past at the first step: no clock is raced
    code, output = dry_run(runner, config_path, tls, isolated_environment,
                           "{% for i in range(3) %}{{ i }}{% endfor %}")
    assert code == ExitCode.CONFIG, output
    assert "body.txt:2:" in output and "takes longer than 0 seconds" in output


def test_output_over_the_limit_stops_the_render_and_names_the_file(
        runner: CliRunner, tls: TLSFiles, config_path: Path, isolated_environment: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_OUTPUT", 50_000)
    code, output = dry_run(runner, config_path, tls, isolated_environment,
                           "{% for i in range(1000) %}{{ 'x' * 100 }}{% endfor %}")
    assert code == ExitCode.CONFIG, output
    assert "overdue-invoice/body.txt: a template" in output and "writes more than 50,000 characters" in output


def test_a_block_or_macro_body_over_the_output_limit_is_refused_before_it_is_joined(
        runner: CliRunner, tls: TLSFiles, config_path: Path, isolated_environment: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_OUTPUT", 50_000)
    code, output = dry_run(runner, config_path, tls, isolated_environment,
                           "{% set x = 'a' * 1000 %}{% set big %}{% for i in range(100) %}{{ x }}{% endfor %}"
                           "{% endset %}{{ big | length }}")
    assert code == ExitCode.CONFIG, output
    assert "body.txt:2:" in output and "a text block of" in output


def test_templates_that_compute_a_little_still_render(
        runner: CliRunner, tls: TLSFiles, config_path: Path, isolated_environment: Path) -> None:
    body = ("{{ 'Total' | center(20) }}|{{ '%8.2f' % 1234.5 }}|{{ '{:>6}'.format('x') }}|{{ 'ab' * 3 }}|"
            "{{ 2 ** 10 }}|{% for i in range(3) %}{{ loop.index }}{% endfor %}|{{ [1, 2] | join(',') }}|"
            "{{ 'a b c d' | wordwrap(3) | replace('\\n', '/') }}|{{ 'x\\ny' | indent(2) | replace('\\n', '/') }}|"
            "{{ '%-4s' | format('ab') }}|{{ 'ab'.rjust(4, '.') }}")
    code, output = dry_run(runner, config_path, tls, isolated_environment, body)
    assert code == 0, output
    assert ("       Total        | 1234.50|     x|ababab|1024|123|1,2|a b/c d|x/  y|ab  |..ab") in output


def test_the_templates_of_one_message_share_one_budget(
        runner: CliRunner, tls: TLSFiles, config_path: Path, isolated_environment: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    loop = "{% for i in range(3000) %}{% endfor %}"
    events = isolated_environment / "config" / "xoromail" / "templates" / "overdue-invoice"
    events.mkdir(parents=True)
    (events / "body.html").write_text(f"<p>{loop}</p>\n", encoding="utf-8")
    monkeypatch.setattr(limits, "MAX_STEPS", 5_000)
    assert dry_run(runner, config_path, tls, isolated_environment, "")[0] == 0  # 3,000 steps alone: fine
    code, output = dry_run(runner, config_path, tls, isolated_environment, loop)  # and 3,000 more in body.txt
    assert code == ExitCode.CONFIG, output
    assert "more than 5,000 steps" in output


@pytest.mark.parametrize("payload", [
    "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}",
    "{% for i in [1] %}" * 30 + "{% endfor %}" * 30,  # past Python's 20 nested blocks
    "{{ " + "-" * 100000 + "1 }}",
    "{{ " + "[" * 3000 + "]" * 3000 + " }}",
])
def test_a_template_nested_too_deeply_to_compile_is_a_config_error_naming_its_file(
        runner: CliRunner, tls: TLSFiles, config_path: Path, isolated_environment: Path, payload: str) -> None:
    code, output = dry_run(runner, config_path, tls, isolated_environment, payload)
    assert code == ExitCode.CONFIG, output
    assert "body.txt: the template is nested too deeply to compile" in output and "Traceback" not in output


def test_a_template_file_over_its_size_limit_is_refused_before_it_is_read(
        runner: CliRunner, tls: TLSFiles, config_path: Path, isolated_environment: Path) -> None:
    events = isolated_environment / "config" / "xoromail" / "templates" / "overdue-invoice"
    events.mkdir(parents=True)
    with (events / "body.html").open("wb") as handle:  # sparse: 2 GB on paper, nothing on disk
        handle.truncate(2 * 1024 ** 3)
    code, output = dry_run(runner, config_path, tls, isolated_environment, "ok")
    assert code == ExitCode.CONFIG, output
    assert "body.html is 2,147,483,648 bytes, more than the 1,000,000 a template may be" in output
