// The API reference page: Swagger UI on our own OpenAPI document, no inline script.
"use strict";
(function () {
  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }
  function start() {
    var node = document.getElementById("swagger-ui");
    if (!node || typeof window.SwaggerUIBundle !== "function") return;
    window.ui = window.SwaggerUIBundle({
      url: node.dataset.schemaUrl,
      domNode: node,
      deepLinking: true,
      persistAuthorization: false,
      // "Try it out" with the signed-in session: unsafe methods need Django's CSRF token.
      requestInterceptor: function (request) {
        if (request.method && request.method.toUpperCase() !== "GET") {
          request.headers["X-CSRFToken"] = csrfToken();
        }
        return request;
      },
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
