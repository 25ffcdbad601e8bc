// Signing in inside a Matrix client. When a client (Element) shows this page as a room
// widget, it adds ?widgetId=…&parentUrl=… to the address. The page then asks the client,
// through the widget API (matrix-widget-api, vendored), for an OpenID token — the client
// asks the user once — and posts it to Mercato, which checks it with the user's own
// homeserver. Opened anywhere else, this script does nothing.
(function () {
  "use strict";
  var params = new URLSearchParams(window.location.search);
  var widgetId = params.get("widgetId");
  var parentUrl = params.get("parentUrl");
  var status = document.getElementById("widget-signin-status");
  if (!widgetId || !parentUrl || window.parent === window || !window.mxwidgets) {
    return;
  }
  if (document.body.dataset.signedIn === "true") {
    return;
  }
  function say(text) {
    if (status) {
      status.textContent = text;
      status.hidden = false;
    }
  }
  var clientOrigin;
  try {
    clientOrigin = new URL(parentUrl).origin;
  } catch (e) {
    return;
  }
  var csrf = document.querySelector('meta[name="mercato-csrf"]').content;
  // The library's browser build defines `mxwidgets` as a function returning its exports.
  var widgets = typeof window.mxwidgets === "function" ? window.mxwidgets() : window.mxwidgets;
  var api = new widgets.WidgetApi(widgetId, clientOrigin);
  api.on("ready", function () {
    say("Signing you in with your Matrix account…");
    api.requestOpenIDConnectToken().then(function (token) {
      var body = new URLSearchParams({
        csrf_token: csrf,
        access_token: token.access_token,
        matrix_server_name: token.matrix_server_name
      });
      return fetch("/web/signin/openid", {method: "POST", body: body, credentials: "same-origin"});
    }).then(function (response) {
      return response.json().then(function (answer) {
        if (!response.ok) {
          throw new Error(answer.error || "Signing in did not work.");
        }
        window.location.reload();
      });
    }).catch(function (error) {
      say("Not signed in: " + error.message + " You can still browse, or use Sign in.");
    });
  });
  api.start();
})();
