// SAML HTTP-POST binding: submit the response form as soon as the page loads (the
// button stays for browsers without scripts). A file, not inline: the CSP is 'self'.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("saml-post");
  if (form) { form.submit(); }
});
