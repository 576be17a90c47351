// OAuth 2.0 Form Post Response Mode: submit the response form as soon as the page loads
// (the button in <noscript> is for browsers without scripts). A file, not inline: the
// page's CSP allows scripts from 'self' only.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("oidc-form-post");
  if (form) { form.submit(); }
});
