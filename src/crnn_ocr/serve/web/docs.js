// The API docs: Swagger UI on this service's own schema (a file, not an inline script: the
// Content-Security-Policy runs only the service's own scripts).
window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true});
