// What every page shares (base.html loads it before a page's own scripts).
//
// Confirmations: a form, a submit button or a link with data-confirm="What will be lost" asks
// first; "Cancel" in the dialog stops the submit or the navigation. The message should say what
// the action destroys, e.g.
//   <button type="submit" data-confirm="Cancel run “demo”? It stops now; checkpoints stay.">Cancel run</button>
// Without JS the action goes ahead (the server still checks who may do it).
(function () {
  "use strict";

  function ask(message) {
    return !message || window.confirm(message);
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var submitter = event.submitter;
    var message = (submitter && submitter.dataset && submitter.dataset.confirm) || (form.dataset && form.dataset.confirm);
    if (!ask(message)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a[data-confirm]") : null;
    if (link && !ask(link.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);
})();
