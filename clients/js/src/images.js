/**
 * Image parts for a message's `content`, from a File or Blob (a file input, a paste, a canvas):
 * checked against what the gateway accepts before anything is sent.
 * @module
 */

/** @typedef {import('../index.js').ImageContent} ImageContent */

/** The largest image the gateway accepts, in bytes (decoded): 5 MiB. */
export const MAX_IMAGE_BYTES = 5 * 1024 * 1024;
/** The formats every provider takes inline. */
export const IMAGE_TYPES = Object.freeze(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);

/**
 * An image part with the bytes inline (a `data:` URL). Rejects with a RangeError for an image
 * over `MAX_IMAGE_BYTES` and a TypeError for another format, before reading it.
 * @param {Blob} blob
 * @returns {Promise<ImageContent>}
 */
export async function imagePart(blob) {
  const type = blob.type.toLowerCase();
  if (!IMAGE_TYPES.includes(type)) {
    throw new TypeError(`an image must be PNG, JPEG, GIF or WebP, not ${type || 'a file of unknown type'}`);
  }
  if (blob.size > MAX_IMAGE_BYTES) {
    throw new RangeError(`the image is ${blob.size} bytes; the gateway accepts at most ${MAX_IMAGE_BYTES} (5 MiB)`);
  }
  const bytes = new Uint8Array(await blob.arrayBuffer());
  return { type: 'image', url: `data:${type};base64,${base64(bytes)}` };
}

/** @param {Uint8Array} bytes */
function base64(bytes) {
  let binary = '';
  const step = 0x8000; // String.fromCharCode takes this many arguments everywhere
  for (let i = 0; i < bytes.length; i += step) binary += String.fromCharCode(...bytes.subarray(i, i + step));
  return btoa(binary);
}
