"""The contacts bot's commands for each network: `<network> login|logout|status|roster|chat`.

Declared on the bot's one registry, once per connector named in CONNECTORS, so `help`
lists them. The handlers find the running `Networks` in the context (`extra`).
"""

from __future__ import annotations

from typing import Any

from bridges.contacts.commands import ContactsContext, registry
from bridges.contacts.connectors import CONNECTORS
from bridges.contacts.connectors.base import BadAddress, LoginFailed
from bridges.contacts.connectors.manager import AlreadyLoggedIn, Networks, NotLoggedIn
from bridges.contacts.connectors.portals import RosterOutcome
from bridges.contacts.links import matrix_to
from mercato.commands import CommandError, argument

LABELS = {"xmpp": ("XMPP", "you@example.org")}


def networks_of(ctx: ContactsContext, network: str) -> Networks:
    networks = ctx.extra.get("networks")
    if not isinstance(networks, Networks) or network not in networks.connectors:
        raise CommandError(f"The {network} connector is turned off on this server.")
    return networks


NAMES_SHOWN = 20


def roster_text(label: str, outcome: RosterOutcome) -> str:
    total = len(outcome.on_mercato) + len(outcome.portals) + outcome.later
    if total == 0:
        return f"Your {label} roster is empty: type `{label.lower()} chat <address>` to " \
               "write to someone."
    lines = [f"Your {label} roster has {total} contact(s)."]
    if outcome.refused:
        lines.append(f"I did not look them up on Mercato: {outcome.refused}.")
    for name, user_id, chat in outcome.on_mercato:
        if chat:
            lines.append(f"• {name} is on Mercato: {user_id} — {matrix_to(user_id)}. I opened "
                         "a chat between you (accept the invitation; it is in your “Contacts” "
                         "space).")
        else:
            lines.append(f"• {name} is on Mercato: {user_id} — {matrix_to(user_id)}. Tap the "
                         "link and choose “Message” to chat with them here.")
    if outcome.portals:
        names = ", ".join(outcome.portals[:NAMES_SHOWN])
        if len(outcome.portals) > NAMES_SHOWN:
            names += f" and {len(outcome.portals) - NAMES_SHOWN} more"
        lines.append(f"I opened a chat for each of the other {len(outcome.portals)} "
                     f"({names}): accept the invitations, and what you write there reaches "
                     f"them on {label}, and back.")
    if outcome.later:
        lines.append(f"{outcome.later} more get a chat when they write to you, or when you "
                     f"type `{label.lower()} chat <address>`.")
    return "\n".join(lines)


def _declare(network: str, label: str, example: str) -> None:
    group = registry.group(network, default="status",
                           help=f"chat with your {label} contacts from here")

    @group.command("login", help=f"log in to your {label} account and bring your roster",
                   direct_only=True,
                   examples=(f"{network} login {example} your-password",))
    @argument("address", help=f"your {label} address")
    @argument("password", rest=True, help="your password (I take your message out of the "
              "chat and keep the password encrypted until you log out)")
    async def login(ctx: ContactsContext, address: str, password: str) -> str:
        ctx.held_identifier = True  # the message holds a password: take it out of the chat
        networks = networks_of(ctx, network)
        connector = networks.connector(network)
        names = [field.name for field in connector.credentials]
        try:
            account, outcome = await networks.login(
                network, ctx.sender, ctx.room_id, dict(zip(names, (address, password),
                                                           strict=False)))
        except BadAddress as e:
            raise CommandError(f"I cannot use that address: {e}.") from None
        except AlreadyLoggedIn as e:
            raise CommandError(f"You are logged in to {label} as {e.account} already; type "
                               f"`{network} logout` first to use another account.") from None
        except LoginFailed as e:
            raise CommandError(f"I could not log you in: {e.message}. I kept nothing; "
                               "try again.") from None
        return (f"Logged in to {label} as {account}. {roster_text(label, outcome)}\n"
                f"Type `{network} logout` to stop; until then I keep your password "
                "encrypted.")

    @group.command("logout", help=f"log out of {label} and forget your password")
    async def logout(ctx: ContactsContext) -> str:
        if not await networks_of(ctx, network).logout(network, ctx.sender):
            return f"You were not logged in to {label}."
        return (f"Logged out of {label}: I disconnected and deleted your password. Your chats "
                f"stay; type `{network} login` to use them again.")

    @group.command("status", help=f"whether you are logged in to {label}")
    async def status(ctx: ContactsContext) -> str:
        found = await networks_of(ctx, network).status(network, ctx.sender)
        if found is None:
            return (f"You are not logged in to {label}. Type `{network} login {example} "
                    "your-password` in a direct chat with me.")
        account, online = found
        return (f"You are logged in to {label} as {account}; "
                + ("connected." if online else "connecting (messages wait until then)."))

    @group.command("roster", help=f"bring contacts added to your {label} roster since")
    async def roster(ctx: ContactsContext) -> str:
        try:
            outcome = await networks_of(ctx, network).import_roster(network, ctx.sender)
        except NotLoggedIn:
            raise CommandError(f"You are not logged in to {label} (or I am still "
                               f"connecting). Type `{network} status` to see.") from None
        return roster_text(label, outcome)

    @group.command("chat", help=f"open a chat with anyone on {label}",
                   examples=(f"{network} chat friend@example.org",))
    @argument("address", help=f"their {label} address")
    async def chat(ctx: ContactsContext, address: str) -> str:
        try:
            portal = await networks_of(ctx, network).open_chat(network, ctx.sender, address)
        except NotLoggedIn:
            raise CommandError(f"You are not logged in to {label}.") from None
        except BadAddress as e:
            raise CommandError(f"I cannot use that address: {e}.") from None
        return f"Your chat with {portal.remote_id} is open: accept the invitation."

    _keep: Any = (login, logout, status, roster, chat)  # registered by the decorators


for _network in CONNECTORS:
    _declare(_network, *LABELS.get(_network, (_network.upper(), "you@example.org")))
