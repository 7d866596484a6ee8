// Profile pictures go from the browser straight to the image store, never through the
// gateway (whose body limit is far below a picture's): the user API grants a presigned POST,
// the file is posted to it, and the API confirms the upload.
(function () {
  "use strict";

  var TYPES = { "image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WebP" };

  function Refused(message) { this.message = message; }

  // The type from the file's first bytes; the name and the browser's guess do not count.
  function sniff(file) {
    return file.slice(0, 12).arrayBuffer().then(function (buffer) {
      var b = new Uint8Array(buffer);
      var text = String.fromCharCode.apply(null, b);
      if (text.indexOf("\x89PNG\r\n\x1a\n") === 0) return "image/png";
      if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "image/jpeg";
      if (text.slice(0, 4) === "RIFF" && text.slice(8, 12) === "WEBP") return "image/webp";
      return null;
    });
  }

  // The public API, as the signed-in person; its error envelope becomes the message.
  function api(method, path, body) {
    return fetch(path, {
      method: method,
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin"
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (response.ok) return data;
        var errors = (data && data.errors) || [];
        var text = errors.map(function (e) { return e.msg; }).join(" ");
        throw new Refused(text || "That did not work. Please try again.");
      });
    });
  }

  function megabytes(bytes) { return Math.floor(bytes / 1000000) + " MB"; }

  function show(form, message) {
    var box = form.querySelector("[data-upload-error]");
    box.textContent = message;
    box.hidden = !message;
    var input = form.querySelector("input[type=file]");
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }

  function upload(form) {
    var input = form.querySelector("input[type=file]");
    var button = form.querySelector("button[type=submit]");
    var user = form.getAttribute("data-user");
    var limit = parseInt(form.getAttribute("data-max-bytes"), 10);
    var file = input.files && input.files[0];
    show(form, "");
    if (!file) return show(form, "Choose an image file.");
    if (file.size > limit) return show(form, "The image is larger than " + megabytes(limit) + ".");
    button.disabled = true;
    form.setAttribute("aria-busy", "true");
    sniff(file).then(function (type) {
      if (!TYPES[type]) throw new Refused("Use a JPEG, PNG or WebP image.");
      return api("PUT", "/api/users/" + user + "/image", { contentType: type });
    }).then(function (grant) {
      var body = new FormData();
      Object.keys(grant.fields).forEach(function (name) { body.append(name, grant.fields[name]); });
      body.append("file", file);
      return fetch(grant.url, { method: "POST", body: body }).catch(function () {
        throw new Refused("The image store is unavailable. Please try again.");
      }).then(function (response) {
        if (response.status >= 500) throw new Refused("The image store is unavailable. Please try again.");
        if (!response.ok) {
          throw new Refused("Use a JPEG, PNG or WebP image up to " + megabytes(grant.maxBytes || limit) + ".");
        }
        return api("POST", "/api/users/" + user + "/image/confirm", { key: grant.key });
      });
    }).then(function () {
      window.location.assign("/users/" + user);
    }).catch(function (error) {
      button.disabled = false;
      form.removeAttribute("aria-busy");
      show(form, error instanceof Refused ? error.message : "That did not work. Please try again.");
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches("[data-avatar-upload]")) return;
    event.preventDefault();
    upload(form);
  });

  // The form needs this script: without it the page says so instead of offering it.
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-avatar-upload]").forEach(function (form) { form.hidden = false; });
  });
})();
