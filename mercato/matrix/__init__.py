"""Matrix helpers shared by every component: appservice base, inbox, admin, HTML."""
