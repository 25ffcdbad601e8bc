"""Customer service: a buyer's DM with a shop, relayed to the shop's staff room and back."""
