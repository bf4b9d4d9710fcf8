// Copy buttons: the only script on the portal. Everything else works without JavaScript.
// data-copy names a read-only field (its value is copied) or another element (its text).
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (!button) { return; }
  var field = document.getElementById(button.getAttribute("data-copy"));
  if (!field) { return; }
  var text = selectToCopy(field);
  var done = function () {
    var status = button.parentElement.querySelector(".copied");
    if (status) { status.textContent = "Copied to the clipboard."; }
    button.textContent = "Copied";
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, function () { document.execCommand("copy"); done(); });
  } else {
    document.execCommand("copy");
    done();
  }
});

// Select what is copied, so it shows; return its text. Focus stays on the button for an
// element that is not a field, such as a code example.
function selectToCopy(field) {
  if (typeof field.select === "function") {
    field.select();
    return field.value;
  }
  var range = document.createRange();
  range.selectNodeContents(field);
  window.getSelection().removeAllRanges();
  window.getSelection().addRange(range);
  return field.textContent;
}
