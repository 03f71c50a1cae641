// base:image: a tab that shows one picture, replaced by each send_data.
// Data: {"src": "data:image/png;base64,..."} (what plt.show() and savefig() send
// from a run), or a bare data: URL string. Only data: URLs of images are drawn,
// so a script cannot make the page fetch anything.
import { registerHandlerType } from "../charts/index.js";

const IMAGE_URL = /^data:image\/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=]+$/;

function imageType(container, parameters) {
  const img = document.createElement("img");
  img.className = "handler-image";
  img.alt = parameters.title || "figure";
  img.style.maxWidth = "100%";
  img.style.maxHeight = "100%";
  img.style.objectFit = "contain";
  container.append(img);
  return {
    update(data) {
      const src = typeof data === "string" ? data : data?.src;
      if (typeof src !== "string" || !IMAGE_URL.test(src)) {
        throw new Error('base:image takes {"src": "data:image/png;base64,..."}');
      }
      img.src = src;
    },
    destroy() {
      img.remove();
    },
  };
}

registerHandlerType("base:image", imageType);
