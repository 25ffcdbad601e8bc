"""Mercato's web pages on the commerce port: the storefront, the merchant console and what
they stand on — signing in with a Matrix account, server-side sessions, CSRF tokens, the
page shell with its Content-Security-Policy, and the vendored static assets.

Pages use two modules: `sessions` (who is signed in, `require_user`, `csrf_token`,
`check_csrf`) and `page` (`render`, `error_page`, `static_url`). See docs/web-signin.md.
"""
