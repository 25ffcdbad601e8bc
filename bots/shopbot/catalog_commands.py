"""Catalog commands: list, add, edit, remove and import a shop's products."""

from __future__ import annotations

from typing import Any

from bots.shopbot import buttons, catalog_text
from bots.shopbot.api import ApiError
from bots.shopbot.context import (
    SHOP_OPTION,
    YES_OPTION,
    AwaitFile,
    Need,
    Question,
    ShopContext,
    registry,
)
from mercato.commands import CommandError, Reply, UsageError, argument, option, shorten
from mercato.types import MerchantSlug, Sku

# What a shop's product exports weigh, with room to spare; the API has its own limit.
MAX_IMPORT_BYTES = 20 * 1024 * 1024
CSV_TYPES = ("text/csv", "text/plain", "application/csv", "application/vnd.ms-excel",
             "text/comma-separated-values", "application/octet-stream", "")

products = registry.group("products", help="your shop's catalog", default="list",
                          aliases=("product",))

SKU_ARGUMENT = argument("sku", parser=catalog_text.parse_sku,
                        help="the product's code in your shop, like mug-350")


@products.command("list", help="the products of the shop, or those matching a word",
                  permission=Need.STAFF, examples=("products list", "products list mug"))
@argument("search", required=False, rest=True, help="a word in the title, SKU or tags")
@SHOP_OPTION
async def products_list(ctx: ShopContext, search: str | None, shop: MerchantSlug) -> Reply:
    query = (search or "").strip()
    found = await ctx.commerce.products(shop, query)
    # The answer quotes the search back: a short prefix of it.
    return catalog_text.product_list(shop, found["products"], int(found.get("total", 0)),
                                     shorten(query), ctx.prefix)


def _product_options(command: Any) -> Any:
    """The optional product fields, shared by add and edit."""
    for declare in reversed((
            option("description", rest=True, metavar="text",
                   help="what it is (everything up to the next --option)"),
            option("url", parser=catalog_text.parse_clearable_url, metavar="https://…",
                   help="the product on your own website"),
            option("stock", parser=catalog_text.parse_stock,
                   metavar="in_stock|out_of_stock|preorder",
                   help="whether it can be bought now (a new product: in_stock)"),
            option("original-price", parser=catalog_text.parse_clearable_price,
                   metavar="price", help="the price before a sale ('off' to end the sale)"),
    )):
        command = declare(command)
    return command


@products.command(
    "add", help="add a product to the catalog", permission=Need.EDITOR,
    details="Prices are written with a dot or a comma, at most two decimals. The currency is "
            "its ISO 4217 code.",
    examples=("products add mug-350 24.00 EUR Stoneware mug --description Holds 350 ml "
              "--stock in_stock",
              "products add tee-s 15 USD Logo tee --original-price 20"))
@SKU_ARGUMENT
@argument("price", parser=catalog_text.parse_price, help="like 19.90")
@argument("currency", parser=catalog_text.parse_currency, help="like EUR")
@argument("title", rest=True, help="the product's name as buyers see it")
@_product_options
@SHOP_OPTION
async def products_add(ctx: ShopContext, sku: Sku, price: str, currency: str, title: str,
                       description: str | None, url: str | None, stock: str | None,
                       original_price: str | None, shop: MerchantSlug) -> str:
    fields: dict[str, Any] = {"sku": sku, "price": price, "currency": currency,
                              "title": title.strip()}
    optional = {"description": description, "url": url, "stock": stock,
                "original_price": original_price}
    fields.update({k: v for k, v in optional.items() if v})
    created = await ctx.commerce.create_product(shop, fields)
    return catalog_text.product_saved("Added", shop, created, ctx.prefix)


@products.command(
    "edit", help="change a product: price, stock, title, …", permission=Need.EDITOR,
    details="Give only what changes. A lower price or a product back in stock edits the cards "
            "already posted and tells the buyers who asked for an alert.",
    examples=("products edit mug-350 --price 19.90 --original-price 24.00",
              "products edit mug-350 --stock out_of_stock"))
@SKU_ARGUMENT
@option("price", parser=catalog_text.parse_price, metavar="price", help="the new price")
@option("currency", parser=catalog_text.parse_currency, metavar="code", help="like EUR")
@option("title", rest=True, metavar="text", help="the new name")
@_product_options
@SHOP_OPTION
async def products_edit(ctx: ShopContext, sku: Sku, price: str | None, currency: str | None,
                        title: str | None, description: str | None, url: str | None,
                        stock: str | None, original_price: str | None,
                        shop: MerchantSlug) -> str:
    changes: dict[str, Any] = {
        name: value for name, value in (
            ("price", price), ("currency", currency), ("title", title),
            ("description", description), ("url", url), ("stock", stock),
            ("original_price", original_price))
        if value is not None}
    if "description" in changes and changes["description"].strip().lower() in ("off", "none"):
        changes["description"] = ""
    if "original_price" in changes and changes["original_price"] == "":
        changes["original_price"] = None
    if not changes:
        raise UsageError("Say what changes, for example --price 19.90 or --stock "
                         "out_of_stock.")
    updated = await ctx.commerce.update_product(shop, sku, changes)
    return catalog_text.product_saved("Changed:", shop, updated, ctx.prefix)


@products.command("remove", help="remove a product from the catalog (asks first)",
                  permission=Need.EDITOR, examples=("products remove mug-350",))
@SKU_ARGUMENT
@YES_OPTION
@SHOP_OPTION
async def products_remove(ctx: ShopContext, sku: Sku, yes: bool, shop: MerchantSlug) -> Reply:
    product = await ctx.commerce.product(shop, sku)
    if not (yes or ctx.confirmed):
        return Question(
            f"Remove {catalog_text.product_line(product)} from {shop}? Its page stops "
            "working; cards already posted stay as they are.\n"
            + buttons.legend("remove it", "keep it"),
            declined=f"OK, {sku} stays in the catalog of {shop}.")
    await ctx.commerce.delete_product(shop, sku)
    return Reply(f"Removed {sku} “{product['title']}” from {shop}.")


IMPORT_MISSING = ("Importing a CSV file is not available on this Mercato server yet, so "
                  "nothing was imported. Add products one by one with {prefix}products add, "
                  "or ask the operator to update Mercato.")


@products.command(
    "import", help="import a CSV file of products (Shopify, WooCommerce or plain)",
    permission=Need.EDITOR, direct_only=True,
    details="Send the file in this chat after the command (or with the command as its "
            "caption, or reply to the file with the command). Each row is imported or "
            "refused on its own; the answer lists refused rows and why. Rows whose SKU "
            "exists already update that product.",
    examples=("products import", "products import --currency EUR"))
@option("currency", parser=catalog_text.parse_currency, metavar="code",
        help="for files without a currency column, like EUR")
@SHOP_OPTION
async def products_import(ctx: ShopContext, currency: str | None, shop: MerchantSlug) -> Reply:
    attachment = await ctx.file()
    if attachment is None:
        return AwaitFile(f"Send me the CSV file now, in this chat, and I will import it into "
                         f"{shop} (I wait 15 minutes). You can also reply to a file you sent "
                         f"earlier with {ctx.prefix}products import.")
    name = attachment.filename.lower()
    if attachment.mimetype.startswith("image/") or not (
            name.endswith((".csv", ".txt")) or attachment.mimetype in CSV_TYPES):
        raise CommandError(f"{attachment.shown_name} is not a CSV file. Export your products as "
                           "CSV (Shopify: Products → Export; WooCommerce: Products → Export) "
                           "and send that file.")
    if attachment.size is not None and attachment.size > MAX_IMPORT_BYTES:
        raise CommandError(f"{attachment.shown_name} is over {MAX_IMPORT_BYTES // 2**20} MiB; "
                           "split it into smaller files and send them one by one.")
    data = await ctx.bot_matrix.download(attachment)
    try:
        report = await ctx.commerce.import_products(shop, data, currency)
    except ApiError as e:
        # The route itself is missing (an older commerce service): not the shop or file.
        if e.status in (404, 405) and e.errcode in ("", "M_UNRECOGNIZED"):
            raise CommandError(IMPORT_MISSING.format(prefix=ctx.prefix)) from None
        raise
    return catalog_text.import_report(shop, report, attachment.shown_name)
