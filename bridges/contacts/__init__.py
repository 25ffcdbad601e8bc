"""The contact-import bridge: address books and other networks → Matrix."""
