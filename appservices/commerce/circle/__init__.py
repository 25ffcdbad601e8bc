"""The Circle: each buyer's recommendations, in a room of their own that only their friends
join, and a Space holding the channels they follow and their friends' circle rooms.

`rules.py` is what a circle room is and what a recommendation says (sans I/O);
`storage.py` every SQL statement; `operations.py` opting in and out, recommending,
approving and removing friends, the feed and the digest; `friends.py` asks the contacts
bridge who a user's friends are; `rooms.py` is the Matrix side (circle rooms, Spaces,
memberships, the outbox's hooks for recommendations and their edits); `routes.py` the API.
"""
