// Starts Swagger UI on the gateway's document (its URL is the page's data-openapi-url).
// A file of its own, not an inline script: the page's CSP allows scripts from this origin only.
// validatorUrl "none": Swagger UI would otherwise send the document to validator.swagger.io.
// queryConfigEnabled stays false (the default): no ?url=… can point the page at another host.
window.addEventListener("load", function () {
  "use strict";
  var node = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: node.dataset.openapiUrl,
    domNode: node,
    deepLinking: true,
    validatorUrl: "none",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
