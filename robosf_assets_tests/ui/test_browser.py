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
from collections.abc import Callable, Iterator
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
GROUPS = ("expert", "datasets", "pretraining", "baseline", "comparison")
LINEAGE = ("expert_policy", "trajectory_dataset", "validated_dataset", "bc_policy",
           "finetuned_policy", "baseline_policy", "comparison_report")
DATASET_CHECKS = ("dataset_size_within_cap", "episode_count_minimum", "dataset_integrity")
RENDER_TIMEOUT_S = 60  # for the React app to show a page (seconds, but the cores are shared)
INSTALL_HINT = ("install them with `make test` (its `chromium` target) or `apt-get install -y "
                "chromium chromium-driver`; ROBOSF_SKIP_BROWSER=1 skips this test")
CHROMIUM_ARGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-crash-reporter", "--window-size=1600,1000")
# the graph's gear: icon-only, unlike the navigation's "Settings" button with the same icon
GRAPH_SETTINGS = "//button[normalize-space(.)=''][.//*[@role='img' and @aria-label='settings']]"
EXPAND_ALL_GROUPS = "//*[@role='menuitem'][contains(., 'Expand all groups')]"


def _executable(*names: str) -> str | None:
    """The first of ``names`` on PATH or in /usr/bin (where Debian puts both)."""
    for name in names:
        found = shutil.which(name) or shutil.which(name, path="/usr/bin")
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def chrome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """A headless Chromium session; fails (never skips) when the browser is not installed."""
    if SELENIUM_MISSING is not None:
        pytest.fail(f"{SELENIUM_MISSING}: install the dev extras with "
                    "`.venv/bin/pip install -e '.[dev]'` (or run `make test`)")
    browser = _executable("chromium", "chromium-browser")
    driver_path = _executable("chromedriver")
    missing = [name for name, path in (("chromium", browser), ("chromedriver", driver_path))
               if path is None]
    if missing:
        pytest.fail(f"{' and '.join(missing)} not found: {INSTALL_HINT}")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (*CHROMIUM_ARGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(arg)
    log_path = tmp_path_factory.getbasetemp() / "chromedriver.log"
    service = DriverService(driver_path, log_output=str(log_path))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.set_page_load_timeout(RENDER_TIMEOUT_S)
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def ui(chrome: webdriver.Chrome, webserver: Webserver) -> webdriver.Chrome:
    """The browser, the instance told the "join the community" prompt was seen (as Skip does)."""
    webserver.graphql("mutation { setNuxSeen }")
    return chrome


def _open(driver: webdriver.Chrome, url: str, screenshot: Path, locator: tuple[str, str],
          texts: tuple[str, ...], act: Callable[[webdriver.Chrome], None] | None = None) -> None:
    """Load ``url``, optionally ``act``, then wait until each text is a whole line in ``locator``.

    The screenshot is saved whatever happens; on timeout the failure names the missing texts.
    """
    driver.get(url)
    shown: set[str] = set()

    def all_shown(d: webdriver.Chrome) -> bool:
        nonlocal shown
        shown = {line.strip() for e in d.find_elements(*locator) for line in e.text.splitlines()}
        return all(t in shown for t in texts)

    try:
        if act is not None:
            act(driver)
        WebDriverWait(driver, RENDER_TIMEOUT_S, poll_frequency=0.5).until(all_shown)
    except TimeoutException:
        missing = [t for t in texts if t not in shown]
        pytest.fail(f"{url}: {missing} not shown after {RENDER_TIMEOUT_S} s in {locator}; "
                    f"screenshot {screenshot}; lines shown: {sorted(shown)[:200]}")
    finally:
        driver.save_screenshot(str(screenshot))


def _expand_all_groups(driver: webdriver.Chrome) -> None:
    """The graph's settings, then "Expand all groups", as a user does; then close the menu."""
    wait = WebDriverWait(driver, RENDER_TIMEOUT_S, poll_frequency=0.5)
    wait.until(ec.element_to_be_clickable((By.XPATH, GRAPH_SETTINGS))).click()
    wait.until(ec.element_to_be_clickable((By.XPATH, EXPAND_ALL_GROUPS))).click()
    ActionChains(driver).send_keys(Keys.ESCAPE).perform()


def test_asset_graph_shows_the_whole_lineage(ui, webserver: Webserver, artifacts_dir: Path):
    # group and asset nodes are HTML in the <foreignObject>s of the graph's <svg>; the sidebar
    # (which lists the groups too) is not in it
    _open(ui, f"{webserver.url}/asset-groups", artifacts_dir / "ui-asset-graph.png",
          (By.CSS_SELECTOR, "svg foreignObject"), (*GROUPS, *LINEAGE), act=_expand_all_groups)


def test_comparison_report_lists_the_scenario_partitions(ui, webserver: Webserver,
                                                          artifacts_dir: Path):
    _open(ui, f"{webserver.url}/assets/comparison_report?view=partitions",
          artifacts_dir / "ui-comparison_report-partitions.png", (By.TAG_NAME, "body"),
          ("comparison_report", "Partitions", *SCENARIOS))


def test_trajectory_dataset_shows_its_three_checks(ui, webserver: Webserver, artifacts_dir: Path):
    _open(ui, f"{webserver.url}/assets/trajectory_dataset?view=checks",
          artifacts_dir / "ui-trajectory_dataset-checks.png", (By.TAG_NAME, "body"),
          ("trajectory_dataset", "Checks (3)", *DATASET_CHECKS))
