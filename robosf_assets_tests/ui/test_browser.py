"""What a user sees in the Dagster UI, checked in headless Chromium driven by Selenium.

Pages: the global asset lineage with every group expanded, the partitions of
``comparison_report`` and the checks of ``trajectory_dataset``. Each page's screenshot is
kept in ``test-artifacts/`` (pass or fail).

Chromium and chromedriver come from Debian (``make test`` installs them; by hand:
``apt-get install -y chromium chromium-driver``). Their absence fails the test, because
CI must run it; ``ROBOSF_SKIP_BROWSER=1`` skips it on purpose.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from robosf_assets_tests.ui.conftest import Webserver

try:  # a dev extra: its absence fails the tests (in the `chrome` fixture), it never skips them
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.service import Service as DriverService
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError as err:
    SELENIUM_MISSING: ImportError | None = err
else:
    SELENIUM_MISSING = None

pytestmark = [
    pytest.mark.ui,
    pytest.mark.skipif(os.environ.get("ROBOSF_SKIP_BROWSER") == "1",
                       reason="ROBOSF_SKIP_BROWSER=1: browser tests skipped on request"),
]

SCENARIOS = ("crossing", "corridor", "bottleneck")
LINEAGE = ("expert_policy", "trajectory_dataset", "validated_dataset", "bc_policy", "finetuned_policy",
           "baseline_policy", "comparison_report")
GROUPS = ("expert", "datasets", "pretraining", "baseline", "comparison")
DATASET_CHECKS = ("dataset_size_within_cap", "episode_count_minimum", "dataset_integrity")
RENDER_TIMEOUT_S = 60  # the React app: first load compiles nothing, but 2 shared cores are slow
INSTALL_HINT = ("install them with `make test` (target `chromium`) or "
                "`apt-get install -y chromium chromium-driver`; ROBOSF_SKIP_BROWSER=1 skips this test")
CHROMIUM_ARGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--window-size=1600,1000")


def _executable(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def chrome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A headless Chromium session; fails (never skips) when the browser is not installed."""
    if SELENIUM_MISSING is not None:
        pytest.fail(f"{SELENIUM_MISSING}: install the dev extras, `.venv/bin/pip install -e '.[dev]'` "
                    "(or run `make test`)")
    browser = _executable("chromium", "chromium-browser")
    driver_path = _executable("chromedriver")
    if browser is None or driver_path is None:
        missing = " and ".join(n for n, p in (("chromium", browser), ("chromedriver", driver_path)) if p is None)
        pytest.fail(f"{missing} not found: {INSTALL_HINT}")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in CHROMIUM_ARGS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    log_path = tmp_path_factory.getbasetemp() / "chromedriver.log"
    driver = webdriver.Chrome(service=DriverService(driver_path, log_output=str(log_path)), options=options)
    try:
        driver.set_page_load_timeout(RENDER_TIMEOUT_S)
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def ui(chrome, webserver: Webserver):
    """The browser, with the instance told the "join the community" prompt was seen (as Skip does)."""
    webserver.graphql("mutation { setNuxSeen }")
    return chrome


def _open(driver, url: str, screenshot: Path, locator: tuple[str, str], texts: tuple[str, ...],
          before_check=None) -> None:
    """Load ``url``, optionally act, then wait until each text is a whole line shown in ``locator``.

    The screenshot is saved whatever happens; on timeout the failure names the missing texts.
    """
    driver.get(url)
    shown: set[str] = set()

    def all_shown(d) -> bool:
        nonlocal shown
        shown = {line.strip() for e in d.find_elements(*locator) for line in e.text.splitlines()}
        return all(t in shown for t in texts)

    try:
        if before_check is not None:
            before_check(driver)
        WebDriverWait(driver, RENDER_TIMEOUT_S, poll_frequency=0.5).until(all_shown)
    except TimeoutException:
        missing = [t for t in texts if t not in shown]
        pytest.fail(f"{url}: {missing} not shown after {RENDER_TIMEOUT_S} s in {locator}; "
                    f"screenshot {screenshot}; lines shown: {sorted(shown)[:200]}")
    finally:
        driver.save_screenshot(str(screenshot))


def _expand_all_groups(driver) -> None:
    """Graph settings (the gear under the zoom slider), then "Expand all groups", as a user does."""
    wait = WebDriverWait(driver, RENDER_TIMEOUT_S, poll_frequency=0.5)
    # icon-only: the navigation's "Settings" button carries the same icon and a label
    wait.until(ec.element_to_be_clickable(
        (By.XPATH, "//button[normalize-space(.)=''][.//*[@role='img' and @aria-label='settings']]"))).click()
    wait.until(ec.element_to_be_clickable(
        (By.XPATH, "//*[@role='menuitem'][contains(., 'Expand all groups')]"))).click()
    ActionChains(driver).send_keys(Keys.ESCAPE).perform()  # close the menu before the screenshot


def test_asset_graph_shows_the_whole_lineage(ui, webserver: Webserver, artifacts_dir: Path):
    # the graph's group and asset nodes are HTML in <foreignObject>s of its <svg>; the sidebar is not
    graph = (By.CSS_SELECTOR, "svg foreignObject")
    _open(ui, f"{webserver.url}/asset-groups", artifacts_dir / "ui-asset-graph.png", graph,
          (*GROUPS, *LINEAGE), before_check=_expand_all_groups)


def test_comparison_report_lists_the_scenario_partitions(ui, webserver: Webserver, artifacts_dir: Path):
    _open(ui, f"{webserver.url}/assets/comparison_report?view=partitions",
          artifacts_dir / "ui-comparison_report-partitions.png", (By.TAG_NAME, "body"),
          ("comparison_report", "Partitions", *SCENARIOS))


def test_trajectory_dataset_shows_its_three_checks(ui, webserver: Webserver, artifacts_dir: Path):
    _open(ui, f"{webserver.url}/assets/trajectory_dataset?view=checks",
          artifacts_dir / "ui-trajectory_dataset-checks.png", (By.TAG_NAME, "body"),
          ("trajectory_dataset", "Checks (3)", *DATASET_CHECKS))
