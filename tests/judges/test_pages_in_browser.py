"""The demo's pages in a real headless Chromium: the clinic's claims page, a claim's page and the
insurer's reviewer page render; a manual decision clicked on the reviewer page appears on the
clinic's page, which updates itself without a reload."""
import json
import time
import urllib.request

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture
def browser(tmp_path):
    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def fresh(action, attempts=40):
    """Runs `action` again when the page's live refresh replaced the element it was using (the
    pages swap their `#live` section in place whenever something changes)."""
    for _ in range(attempts - 1):
        try:
            return action()
        except StaleElementReferenceException:
            time.sleep(0.05)
    return action()


def get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def submit(demo):
    request = urllib.request.Request(f"{demo.clinic}/api/claims", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_a_decision_clicked_by_a_reviewer_shows_up_on_the_clinic_page(demo_factory, browser, tmp_path):
    # Real time: manual reviews wait for days, so the claim stays put until someone decides it.
    demo = demo_factory("--time-scale", "1", "--claims-per-minute", "0", "--seed", "5")
    manual = None
    for _ in range(40):
        claim = submit(demo)
        if claim["review_mode"] == "manual":
            manual = claim
            break
    assert manual, "one claim in forty goes to manual review"
    clinic_claim, insurer_claim = manual["clinic_claim_id"], manual["insurer_claim_id"]

    browser.get(f"{demo.clinic}/")
    assert browser.title.startswith("Clinic MIS")
    row_status = lambda: browser.find_element(By.CSS_SELECTOR, f'tr[data-claim="{clinic_claim}"]').get_attribute("data-status")  # noqa: E731
    assert fresh(row_status) == "in_review"
    assert fresh(lambda: browser.find_element(By.ID, "strategy").text) == "webhook"
    clinic_tab = browser.current_window_handle

    browser.switch_to.new_window("tab")
    browser.get(f"{demo.insurer}/review")
    assert browser.title == "Insurer — manual review"
    browser.save_screenshot(str(tmp_path / "review.png"))
    fresh(lambda: browser.find_element(By.CSS_SELECTOR, f'tr[data-claim="{insurer_claim}"] button[data-decide="approved"]').click())
    WebDriverWait(browser, 10).until(
        lambda d: not d.find_elements(By.CSS_SELECTOR, f'tr[data-claim="{insurer_claim}"]'),
        "the decided claim leaves the waiting list",
    )

    browser.switch_to.window(clinic_tab)
    WebDriverWait(browser, 10, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda d: row_status() == "approved",
        "the clinic's page shows the decision without a reload",
    )
    assert browser.execute_script("return document.body.dataset.refreshed") is not None, "updated in place"
    assert "webhook" in fresh(lambda: browser.find_element(By.CSS_SELECTOR, f'tr[data-claim="{clinic_claim}"]').text)
    browser.save_screenshot(str(tmp_path / "clinic.png"))
    learned = [c for c in get(f"{demo.clinic}/api/claims")["data"] if c["clinic_claim_id"] == clinic_claim][0]
    assert learned["learned_via"] == "webhook" and learned["lag_real_ms"] < 1000, learned

    fresh(lambda: browser.find_element(By.CSS_SELECTOR, f'tr[data-claim="{clinic_claim}"] a').click())
    WebDriverWait(browser, 10).until(lambda d: d.title == f"Claim {clinic_claim}")
    assert "approved" in browser.find_element(By.ID, "live").text
