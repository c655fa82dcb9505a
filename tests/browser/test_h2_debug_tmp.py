from tests.browser.test_campaign_layout import PASSWORD, _login, make_user, long_campaign  # noqa

def test_debug(live_server, transactional_db, browser, long_campaign):
    make_user("cleo", "creative", password=PASSWORD)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    _login(page, live_server, "cleo")
    for url in ["/", f"/campaigns/{long_campaign.pk}/"]:
        page.goto(live_server.url + url)
        print(url, page.evaluate("""() => { const w = document.documentElement.clientWidth; return [...document.querySelectorAll('*')].filter(e => e.getBoundingClientRect().right > w + 0.5).slice(0, 15).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().left) + '-' + Math.round(e.getBoundingClientRect().right) + ' ' + (e.textContent||'').slice(0,30)); }"""))
    context.close()
