"""A physicist in a real browser: headless Chromium driven by Selenium (Debian's chromium,
chromium-driver and python3-selenium), run inside the testbed's browser container
(tests/integration/test_browser.py copies it there).

    python3 browser_e2e.py --hub https://services.af.test:8443 --user bob --password-file F --out DIR
    python3 browser_e2e.py --hub ... --user bob --out DIR --notebook examples/zpeak-public-data.ipynb

The first form opens the hub, clicks the login button, logs in on the OIDC provider's own login page
(consenting to the hub's scopes the first time), waits for JupyterLab and takes a screenshot
(DIR/jupyterlab.png). The second, in the same browser profile (the hub's cookies kept), opens a
notebook in JupyterLab and waits for its rendered histogram (DIR/notebook.png). Each prints one JSON
line: timings and what the pages showed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import time
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait


def browser(profile: Path) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    options.add_argument(f"--user-data-dir={profile}")
    # --no-sandbox: the browser container has no user namespaces to build Chromium's sandbox in.
    # TLS is verified: the site CA is in the container's NSS database (the browser's trust store).
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,1000"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def visible(driver, css: str):
    return [element for element in driver.find_elements(By.CSS_SELECTOR, css) if element.is_displayed()]


def buttons(driver, word: str) -> list:
    """Visible buttons whose label contains word (case-insensitive)."""
    return [
        button
        for button in visible(driver, "button, input[type=submit]")
        if word in (button.text or button.get_attribute("value") or "").strip().lower()
    ]


def log_in_at_provider(driver, user: str, password: str, hub: str, timeout: float) -> bool:
    """Fill the provider's login form and consent if asked, until the browser is back at the hub.
    Returns whether the form was shown (a provider session may let the user straight through)."""
    deadline = time.monotonic() + timeout
    submitted = granted = False
    while not driver.current_url.startswith(hub):
        if time.monotonic() > deadline:
            raise TimeoutError(f"still at {driver.current_url} {timeout} s after the login button")
        with contextlib.suppress(WebDriverException):  # the page changed under us: look again
            password_fields = visible(driver, "input[type=password]")
            if password_fields and not submitted:
                username_field = visible(driver, "input[type=text], input[type=email], input:not([type])")[0]
                username_field.clear()
                username_field.send_keys(user)
                password_fields[0].send_keys(password + Keys.ENTER)
                submitted = True
            elif not granted and visible(driver, "input[type=checkbox]"):
                # The provider's consent page: tick the hub's scopes, grant, then continue.
                for box in visible(driver, "input[type=checkbox]"):
                    if not box.is_selected() and box.is_enabled():
                        box.click()
                grant = buttons(driver, "grant")
                if grant:
                    grant[0].click()
                    granted = True
            elif buttons(driver, "continue"):
                buttons(driver, "continue")[0].click()
        time.sleep(0.5)
    return submitted


def show_notebook(driver, args, out: Path, result: dict) -> None:
    """Open args.notebook in JupyterLab, bring its rendered histogram into view, take a screenshot."""
    driver.get(f"{args.hub}/user/{args.user}/lab/tree/{args.notebook}")
    # The histogram is below the code: JupyterLab renders outputs as they scroll into view.
    deadline = time.monotonic() + args.timeout
    while not visible(driver, ".jp-OutputArea-output img"):
        if time.monotonic() > deadline:
            raise TimeoutError("no rendered image in the notebook's outputs")
        with contextlib.suppress(WebDriverException):
            driver.execute_script(
                "document.querySelectorAll('.jp-OutputArea-output').forEach(o => o.scrollIntoView());"
            )
        time.sleep(1)
    driver.execute_script("arguments[0].scrollIntoView();", visible(driver, ".jp-OutputArea-output img")[0])
    time.sleep(1)
    result["notebook_images"] = len(visible(driver, ".jp-OutputArea-output img"))
    result["notebook_text"] = "\n".join(e.text for e in visible(driver, ".jp-OutputArea-output"))[-2000:]
    driver.save_screenshot(str(out / "notebook.png"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hub", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password-file")
    parser.add_argument("--profile", default="/root/chromium-profile")
    parser.add_argument("--out", required=True)
    parser.add_argument("--notebook")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {}
    if not args.notebook:
        shutil.rmtree(args.profile, ignore_errors=True)  # a fresh browser: no cookies from earlier runs
    driver = browser(Path(args.profile))
    try:
        if args.notebook:
            show_notebook(driver, args, out, result)
            return
        password = Path(args.password_file).read_text().strip()
        started = time.monotonic()
        driver.get(f"{args.hub}/hub/login")
        result["login_page_title"] = driver.title
        login_button = WebDriverWait(driver, 30).until(
            ec.element_to_be_clickable((By.CSS_SELECTOR, "a[href*='oauth_login']"))
        )
        result["login_button"] = login_button.text.strip()
        login_button.click()
        result["provider_url"] = driver.current_url.split("?")[0]
        result["provider_form_shown"] = log_in_at_provider(driver, args.user, password, args.hub, 60)
        result["login_s"] = round(time.monotonic() - started, 2)
        logged_in = time.monotonic()
        WebDriverWait(driver, args.timeout).until(
            lambda d: f"/user/{args.user}/lab" in d.current_url and visible(d, "#jp-main-dock-panel")
        )
        WebDriverWait(driver, 60).until(lambda d: visible(d, ".jp-DirListing-item"))
        result["spawn_s"] = round(time.monotonic() - logged_in, 2)
        result["lab_url"] = driver.current_url
        result["lab_title"] = driver.title
        result["files"] = [e.text for e in visible(driver, ".jp-DirListing-itemText")]
        driver.save_screenshot(str(out / "jupyterlab.png"))
    finally:
        result["final_url"] = driver.current_url
        driver.save_screenshot(str(out / "last.png"))  # what the browser showed last (a failure's page)
        driver.quit()
        print(json.dumps(result))


if __name__ == "__main__":
    main()
