// Starts the vendored Swagger UI on the document named by #swagger-ui's data-openapi-url.
// A file of its own, not an inline script, so that the page's Content-Security-Policy can
// refuse inline scripts (api/openapi_docs.py).
"use strict";
window.addEventListener("DOMContentLoaded", function () {
  var container = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: container.dataset.openapiUrl,
    domNode: container,
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    persistAuthorization: true,
    validatorUrl: null, // the online validator badge would load an image from another origin
  });
});
