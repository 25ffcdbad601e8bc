"""The console's catalog journeys in Chromium at 360 and 1280 px, on the real network: a
product added with a real PNG photo shows it in the table and on its product page; a bulk
price change is saved and edits the cards a follower's client shows in the channel (and a
refused one changes nothing); a CSV import lists its refused row with the API's sentence
and imports the rest."""

from __future__ import annotations

import aiohttp
from playwright.async_api import Browser, Locator, Page, expect

from mercato_ops.testnet import RunningNetwork
from tests.e2e.console_helpers import WIDTHS, ConsoleShop, console_shop, problems, signed_in
from tests.integration.commerce_api import new_user, open_shop
from tests.integration.shop_helpers import png


async def loaded_width(image: Locator) -> int:
    """The picture's own width once the browser has decoded it (a broken image fails)."""
    await image.scroll_into_view_if_needed()
    return int(await image.evaluate("img => img.decode().then(() => img.naturalWidth)"))


async def prices(shop: ConsoleShop, *skus: str) -> dict[str, str]:
    owner = shop.api.acting_as(shop.staff["owner"])
    found = {}
    for sku in skus:
        answer = await shop.api.get(f"/shops/{shop.slug}/products/{sku}", owner)
        assert answer.status == 200, answer
        found[sku] = answer.body["price"]
    return found


async def test_a_product_added_with_a_photo_is_in_the_catalog_and_on_its_page(
        browser: Browser, network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    shop = await console_shop(network, http)
    for width in WIDTHS:
        sku, title = f"kettle-{width}", f"Copper kettle {width}"
        context, page = await signed_in(browser, shop, "owner", width=width)
        seen = problems(page)
        await page.goto(shop.url("catalog"))
        await page.locator("#new-sku").fill(sku)
        await page.locator("#new-title").fill(title)
        await page.locator("#new-price").fill("45.5")
        await page.locator("#new-quantity").fill("4")
        await page.locator("#new-description").fill("Whistles when the water boils.")
        await page.locator("#new-image").set_input_files(
            {"name": "kettle.png", "mimeType": "image/png", "buffer": png(300, 200)})
        await page.get_by_role("button", name="Add product").click()
        await expect(page.get_by_role("status")).to_have_text(f"Saved {sku}.")

        row = page.locator(f"#row-p-{sku}")
        assert await row.locator(f"#title-p-{sku}").input_value() == title
        assert await row.locator(f"#price-p-{sku}").input_value() == "45.50"
        assert await loaded_width(row.locator("td.thumb img")) > 0
        product = (await shop.api.get(f"/shops/{shop.slug}/products/{sku}")).body
        assert product["image_mxc"].startswith("mxc://localhost/")
        assert (product["image_info"]["w"], product["image_info"]["h"]) == (300, 200)
        assert product["quantity"] == 4

        await row.get_by_role("link", name=sku).click()
        await page.wait_for_url(f"**/p/{shop.slug}/{sku}")
        await expect(page.get_by_role("heading", name=title)).to_be_visible()
        await expect(page.get_by_text("45.50 EUR").first).to_be_visible()
        assert await loaded_width(page.get_by_role("img", name=title)) > 0
        assert seen == [], seen
        await context.close()


async def _bulk(page: Page, shop: ConsoleShop, titles: list[str], change: str,
                value: str) -> None:
    await page.goto(shop.url("catalog"))
    for title in titles:
        await page.get_by_role("checkbox", name=f"Select {title}").check()
    await page.locator("#bulk-change").select_option(change)
    await page.locator("#bulk-value").fill(value)
    await page.get_by_role("button", name="Apply to ticked").click()


async def test_a_bulk_price_change_edits_the_cards_in_the_channel(
        browser: Browser, network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    shop = await console_shop(network, http)
    owner = shop.api.acting_as(shop.staff["owner"])
    for sku, title, price in (("mug", "Mug", "12.00"), ("pot", "Teapot", "30.00"),
                              ("cup", "Cup", "8.00")):
        made = await shop.api.post(f"/shops/{shop.slug}/products", owner, {
            "sku": sku, "title": title, "price": price, "currency": "EUR"})
        assert made.status == 201, made
    follower = await new_user(network, http, "follower")
    room_id = await follower.join(f"#shop_{shop.slug}:localhost")
    cards = {}
    for sku in ("mug", "pot"):
        shared = await shop.api.post(f"/shops/{shop.slug}/products/{sku}/share", owner,
                                     {"room_id": room_id})
        assert shared.status == 200 and shared.body["event_id"], shared
        cards[sku] = shared.body["event_id"]

    def edit_of(sku: str, price: str):  # noqa: ANN202
        def matches(event: dict) -> bool:
            content = event.get("content", {})
            relation = content.get("m.relates_to", {})
            return (relation.get("rel_type") == "m.replace"
                    and relation.get("event_id") == cards[sku]
                    and content["m.new_content"]["org.mercato.product"]["price"] == price)
        return matches

    rounds = [("percent", "-10", {"mug": "10.80", "pot": "27.00"}),
              ("price", "9.99", {"mug": "9.99", "pot": "9.99"})]
    for width, (change, value, expected) in zip(WIDTHS, rounds, strict=True):
        context, page = await signed_in(browser, shop, "owner", width=width)
        seen = problems(page)
        before = await prices(shop, "mug", "pot", "cup")
        # A value the change cannot take is refused for every ticked product at once.
        await _bulk(page, shop, ["Mug", "Teapot"], "percent", "-100")
        refusal = page.get_by_role("alert").filter(has_text="Nothing was changed")
        await expect(refusal).to_have_text(
            "Nothing was changed: value: give a percentage above -100 and at most 1000")
        assert await prices(shop, "mug", "pot", "cup") == before
        seen.clear()  # the browser logs the refusal's 422, which was the answer wanted

        await _bulk(page, shop, ["Mug", "Teapot"], change, value)
        await expect(page.get_by_role("status")).to_have_text("Changed 2 products.")
        assert await prices(shop, "mug", "pot", "cup") == {**expected, "cup": "8.00"}
        for sku, price in expected.items():
            assert await page.locator(f"#price-p-{sku}").input_value() == price
            edit = await follower.wait_for_message(room_id, edit_of(sku, price))
            assert f"{price} EUR" in edit["content"]["m.new_content"]["body"]
        assert seen == [], seen
        await context.close()


async def test_a_csv_import_lists_the_refused_row_with_the_api_sentence(
        browser: Browser, network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    shop = await console_shop(network, http)
    owner = shop.api.acting_as(shop.staff["owner"])

    def csv(width: int) -> bytes:
        return (f"sku,title,price,currency,quantity\n"
                f"tin-{width},Tea tin,6.50,EUR,10\n"
                f"bad-{width},Spoon,1e3,EUR,2\n"
                f"tray-{width},Tray <b>oak</b>,22.00,EUR,3\n").encode()

    # What the API says of the same row, in a shop of its own.
    other = await open_shop(shop.api, shop.staff["owner"], "import")
    by_api = await shop.api.call("POST", f"/shops/{other}/products/import", owner,
                                 data=csv(0), headers={"Content-Type": "text/csv"})
    assert by_api.status == 200, by_api
    [api_refusal] = by_api.body["refused"]
    assert api_refusal["row"] == 3

    for width in WIDTHS:
        context, page = await signed_in(browser, shop, "owner", width=width)
        seen = problems(page)
        await page.goto(shop.url("catalog"))
        await page.locator("#import-file").set_input_files(
            {"name": "catalog.csv", "mimeType": "text/csv", "buffer": csv(width)})
        await page.locator("#import").get_by_role("button", name="Import").click()
        report = page.locator("#import-report")
        await expect(report.get_by_role("status")).to_contain_text(
            "3 rows read (mercato, utf-8): 2 imported, 0 updated, 1 refused")
        refused = report.locator("table.refused tbody tr")
        await expect(refused).to_have_count(1)
        assert await refused.locator("td").all_inner_texts() == [
            "3", f"bad-{width}", api_refusal["reason"]]
        await expect(page.locator("#import-progress")).to_have_attribute("value", "100")
        for sku, title in ((f"tin-{width}", "Tea tin"), (f"tray-{width}", "Tray <b>oak</b>")):
            answer = await shop.api.get(f"/shops/{shop.slug}/products/{sku}", owner)
            assert answer.status == 200 and answer.body["title"] == title, answer
        assert (await shop.api.get(f"/shops/{shop.slug}/products/bad-{width}")).status == 404
        assert seen == [], seen
        await context.close()
