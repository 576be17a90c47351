// CAS method=POST: submit the ticket form as soon as the page loads (the button stays
// for browsers without scripts). A file, not inline: the CSP allows scripts from 'self'.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("cas-post");
  if (form) { form.submit(); }
});
