"""The HTML run report: built from contract-shaped rows, opened in a real headless Chromium.

The browser is Debian's `chromium` with `chromium-driver` (installed by .ci/run and
scripts/bootstrap.sh), driven by Selenium with the driver path given, so nothing is downloaded;
its proxy leads nowhere, so the page cannot reach the network. A missing browser fails these
tests rather than skipping them.

`check_report_in_browser(path)` is meant for reuse: point it at any report.html (e.g. one a real
run through the emulator wrote) to check it renders and keep a screenshot.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import pathlib
import re
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser

import pytest
from PIL import Image
from selenium.webdriver.common.by import By

from snakemake_executor_plugin_prominence.report import html as report_html
from snakemake_executor_plugin_prominence.report import plots as report_plots
from snakemake_executor_plugin_prominence.report import tables as report_tables
from tests import report_data

ROOT = pathlib.Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


def screenshot_script():
    """scripts/report-screenshot.py as a module: the tests use the same browser setup."""
    spec = importlib.util.spec_from_file_location(
        "report_screenshot", ROOT / "scripts" / "report-screenshot.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def open_in_chromium(path: pathlib.Path) -> Iterator:
    """A headless Chromium showing `path` (fully loaded), with its console log kept."""
    script = screenshot_script()
    driver = script.chromium_driver()
    try:
        script.load_page(driver, path)
        yield driver
    finally:
        driver.quit()


# References the page would have to fetch: any src/href/url()/@import that is not a fragment.
EXTERNAL_REFERENCE = re.compile(
    r"""(?:\bsrc\s*=|\bhref\s*=|url\(|@import)\s*["']?(?!#|data:)[^"'\s)>]+""", re.IGNORECASE
)


def distinct_colours(png: bytes) -> int:
    return len(Image.open(io.BytesIO(png)).convert("RGB").getcolors(maxcolors=1 << 20) or [])


def check_report_in_browser(
    path: pathlib.Path, screenshot: pathlib.Path | None = None, expect_text: Iterable[str] = ()
) -> pathlib.Path:
    """Open a report.html in headless Chromium and check it: nothing to fetch (in the source,
    and no resource loaded by the page), no console messages of level SEVERE, every plot an
    inline SVG laid out with a real size that holds drawn paths and paints more than a blank
    box, and every `expect_text` in the page's visible text. Returns the path of a screenshot
    of the page (printed, kept under test-artifacts/ unless `screenshot` says otherwise).

    Reusable on a real run's report: check_report_in_browser(report_dir / "report.html")."""
    path = pathlib.Path(path)
    source = path.read_text(encoding="utf-8")
    assert not EXTERNAL_REFERENCE.findall(source), EXTERNAL_REFERENCE.findall(source)[:5]
    assert "<script" not in source.lower()
    screenshot = screenshot or ARTIFACTS / f"{path.stem}.png"
    with open_in_chromium(path) as driver:
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
        fetched = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
        )
        assert fetched == [], fetched
        plots = driver.find_elements(By.CSS_SELECTOR, "figure.plot")
        assert plots, "the report has no plots"
        for plot in plots:
            svgs = plot.find_elements(By.TAG_NAME, "svg")
            assert len(svgs) == 1, plot.get_attribute("id")
            size = svgs[0].size
            assert size["width"] > 300 and size["height"] > 100, (plot.get_attribute("id"), size)
            paths = driver.execute_script(
                "return arguments[0].querySelectorAll('path').length", svgs[0]
            )
            assert paths > 20, (plot.get_attribute("id"), paths)
            driver.execute_script("arguments[0].scrollIntoView()", svgs[0])
            assert distinct_colours(svgs[0].screenshot_as_png) > 8, plot.get_attribute("id")
        text = driver.find_element(By.TAG_NAME, "body").text
        for expected in expect_text:
            assert expected in text, expected
        driver.execute_script("window.scrollTo(0, 0)")
        screenshot_script().full_page_screenshot(driver, screenshot, max_height=4000)
    assert screenshot.stat().st_size > 10_000
    print(f"report screenshot: {screenshot}")
    return screenshot


@pytest.fixture(scope="module")
def synthetic() -> tuple[list[dict], list[dict], dict]:
    return report_data.make_report_data()


def test_report_renders_in_headless_chromium(tmp_path, synthetic):
    jobs, rules, summary = synthetic
    page = tmp_path / "report.html"
    report_html.write_html(jobs, rules, summary, page)
    expected = [
        f"{summary['core_hours_requested']:.2f}",
        f"{summary['core_hours_used']:.2f}",
        f"{summary['core_hours_failed']:.2f}",
        f"{summary['queue_wait_total_h']:.2f} h",
        f"{100 * summary['cpu_efficiency_overall']:.0f} %",
        f"{summary['ok']} / {summary['failed']}",
        f"NA: {report_data.NO_MEMORY_REASON}",
        "NA: the job never started",
        report_data.EVIL_REASON,
        "sample=S0023,ref=<hg38&x>",
        "call$variants",
        f"The first 200 of {len(jobs)} jobs",
    ]
    shot = check_report_in_browser(page, ARTIFACTS / "report-synthetic.png", expected)
    assert shot.exists()


def test_the_browser_check_catches_a_page_that_reaches_for_the_network(tmp_path):
    """The no-network guarantee is checked, not assumed: an external image fails to load (the
    proxy leads nowhere) and shows up as a SEVERE console message."""
    page = tmp_path / "fetches.html"
    page.write_text('<!DOCTYPE html><html><body><img src="http://example.org/x.png"></body></html>')
    with open_in_chromium(page) as driver:
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert severe, "a failed network fetch was not reported"
    assert EXTERNAL_REFERENCE.findall(page.read_text())


class Elements(HTMLParser):
    """The tags of a page, and its text with entities decoded."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def parse(page: str) -> Elements:
    elements = Elements()
    elements.feed(page)
    return elements


def one_job(**changes) -> dict:
    job = report_data.make_jobs()[1].copy()
    job.update(changes)
    return job


EVIL = '<script>alert("x")</script><b>&amp;'


def test_every_string_from_the_data_is_escaped():
    job = one_job(rule=EVIL, wildcards=EVIL, reason=EVIL, site=EVIL, status="failed")
    job["na_reasons"] = {"peak_memory_mib": EVIL}
    job["peak_memory_mib"] = job["memory_share"] = None
    rules = [{"rule": EVIL, "jobs": 1, "suggestion": EVIL}]
    summary = {"run_id": EVIL, "report_dir": EVIL, "worst_rules": [{"rule": EVIL}]}
    page = report_html.render([job], rules, summary)
    elements = parse(page)
    assert "script" not in elements.tags and "b" not in elements.tags
    text = "".join(elements.text)
    assert text.count(EVIL) >= 8  # rule (tables, list), wildcards, reason, site, suggestion, ...
    assert f"NA: {EVIL}" in text


def test_unknown_values_are_na_with_their_reason_never_zero():
    job = one_job(cpu_efficiency=None, cpu_time_s=None, peak_memory_mib=None, memory_share=None)
    job["na_reasons"] = {"cpu_time_s": "no CPU accounting", "peak_memory_mib": "no memory figures"}
    summary = {"jobs": 1, "cpu_efficiency_overall": None, "core_hours_used": None}
    rules = [{"rule": job["rule"], "jobs": 1, "cpu_efficiency_median": None}]
    text = "".join(parse(report_html.render([job], rules, summary)).text)
    # The derived columns (efficiency, memory share) take the reason of the column they come from.
    assert text.count("NA: no CPU accounting") >= 3  # jobs table, rules table, plot note
    assert text.count("NA: no memory figures") >= 3
    groups = report_html.group_by_rule(rules, [job])
    tables = report_tables.jobs_table([job]) + report_tables.rules_table(rules, groups, 0.5)
    assert not re.search(r"(?<![\d.])0 %", "".join(parse(tables).text))
    cards = parse(report_html.cards(summary))
    assert "".join(cards.text).count("NA") == 8  # every figure but the job count


def test_peaks_say_where_they_come_from_and_memory_kills_are_counted():
    pulled = one_job(
        peak_memory_mib=700.0,
        peak_memory_source="maxResidentSetSizeKB",
        image_pulled=True,
        server_retries=1,
    )
    cgroup = one_job(
        peak_memory_mib=900.0, peak_memory_source="maxMemoryUsageKB", image_pulled=False
    )
    cells = [
        "".join(parse(report_tables.jobs_table([job])).text).replace("\n", " ")
        for job in (pulled, cgroup)
    ]
    assert "700task RSS · may be the image pull's" in cells[0]
    assert "PROMINENCE ran it 2 times" in cells[0]
    assert "900job cgroup" in cells[1] and "image pull" not in cells[1]
    rule = {"rule": pulled["rule"], "jobs": 2, "ok": 1, "failed": 1, "retried": 1,
            "memory_kills": 1, "peak_memory_mib_median": 800.0, "peak_memory_mib_max": 900.0,
            "peak_memory_maybe_pull": 1}  # fmt: skip
    groups = report_html.group_by_rule([rule], [pulled, cgroup])
    text = "".join(parse(report_tables.rules_table([rule], groups, 0.5)).text)
    assert "jobs (ok / failed / retried / killed for memory)" in text
    assert "2 (1 / 1 / 1 / 1)" in text and "1 of 2 may be the image pull's" in text
    cards = "".join(parse(report_html.cards({"jobs": 2, "memory_kills": 1})).text)
    assert "1killed for using too much memory" in cards


def test_element_ids_are_unique_and_every_reference_resolves(synthetic):
    page = report_html.render(*synthetic)
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)) > 100
    references = set(re.findall(r'href="#([^"]+)"', page) + re.findall(r"url\(#([^)]+)\)", page))
    assert references and references <= set(ids)


def test_dollar_signs_in_rule_names_are_drawn_as_text():
    groups = {"a$b": [one_job(rule="a$b")], "c$d$e": [one_job(rule="c$d$e")]}
    svg = report_plots.share_boxplots(groups, 0.5)
    assert svg.startswith("<svg") and "<path" in svg


def test_many_rules_plot_the_busiest_and_say_so(synthetic):
    jobs, _, _ = synthetic
    many = [dict(job, rule=f"rule_{i % 60:02d}") for i, job in enumerate(jobs)]
    many += [dict(jobs[0], rule="rule_07") for _ in range(5)]  # the busiest rule
    groups = report_html.group_by_rule([], many)
    section = report_html.boxplot_section(groups, 0.5)
    limit = report_html.BOXPLOT_MAX_RULES
    assert f"There are 60 rules; the plot shows the {limit} with the most jobs" in section
    plotted = report_html.busiest_rules(groups)
    assert len(plotted) == limit and "rule_07" in plotted
    smallest = min(len(own) for own in plotted.values())
    assert all(len(own) <= smallest for name, own in groups.items() if name not in plotted)


def test_an_empty_run_still_gives_a_page(tmp_path):
    page = tmp_path / "report.html"
    report_html.write_html([], [], {}, page)
    text = "".join(parse(page.read_text()).text)
    assert "No jobs, nothing to plot." in text and "no timeline" in text
    assert not list(tmp_path.glob("*.partial"))


def test_jobs_table_is_capped_with_failed_attempts_first(synthetic):
    jobs, _, _ = synthetic
    table = report_tables.jobs_table(jobs)
    assert table.count("<tr") == report_tables.JOBS_TABLE_MAX_ROWS + 1  # and the header row
    failed = sum(1 for job in jobs if report_tables.job_failed(job))
    assert table.count('<tr class="failed">') == failed
    first_ok = table.index('<tr class="">')
    assert table.rindex('<tr class="failed">') < first_ok
    assert "jobs.tsv" in table


def test_a_large_run_thins_the_timeline_and_says_so(tmp_path, synthetic):
    jobs, rules, summary = synthetic
    many = [dict(job) for job in jobs * 14]  # 5292 rows
    page = tmp_path / "report.html"
    report_html.write_html(many, rules, summary, page)
    check_report_in_browser(page, ARTIFACTS / "report-many-jobs.png")
    section = report_html.timeline_section(many)
    step = -(-len(many) // report_plots.TIMELINE_MAX_JOBS)
    shown = len(many[::step])
    assert f"{len(many)} jobs are more than the timeline draws" in section
    assert f"one job in every {step} in order of creation ({shown} jobs)" in section
    rows, undated = report_plots.timeline_rows(many)
    assert (len(rows), undated) == (len(many), 0)
    thinned, used = report_plots.thin(rows)
    assert used == step and len(thinned) == shown <= report_plots.TIMELINE_MAX_JOBS


def test_building_the_report_leaves_no_pyplot_figures(tmp_path, synthetic):
    """The plots are plain Figure objects: none is registered with pyplot, so none stays open
    (matplotlib itself may import pyplot to resolve its backend name, which keeps no figure)."""
    from matplotlib import pyplot

    before = pyplot.get_fignums()
    report_html.write_html(*synthetic, tmp_path / "report.html")
    assert pyplot.get_fignums() == before
