// IndexedDB of the offline web app: the catalog index (a header, then a few large records: the item
// rows, the int8 vectors, the scales and the serialised full-text database, each read in one go) and
// the feedback outbox. Used by the page (outbox) and by the search worker (index).

const NAME = "metamedia-offline";
const VERSION = 2;

let opening = null;

export function openDb() {
  if (opening) return opening;
  opening = new Promise((resolve, reject) => {
    const req = indexedDB.open(NAME, VERSION);
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains("meta")) db.createObjectStore("meta");
      if (db.objectStoreNames.contains("items")) db.deleteObjectStore("items"); // version 1: a row per item
      if (!db.objectStoreNames.contains("blobs")) db.createObjectStore("blobs");
      if (!db.objectStoreNames.contains("outbox")) db.createObjectStore("outbox", { keyPath: "key" });
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => { opening = null; reject(req.error); };
  });
  return opening;
}

const done = (tx) => new Promise((resolve, reject) => {
  tx.oncomplete = () => resolve();
  tx.onerror = () => reject(tx.error);
  tx.onabort = () => reject(tx.error || new Error("transaction aborted"));
});
const result = (req) => new Promise((resolve, reject) => {
  req.onsuccess = () => resolve(req.result);
  req.onerror = () => reject(req.error);
});

export async function getMeta(key) {
  const db = await openDb();
  return result(db.transaction("meta").objectStore("meta").get(key));
}

export async function readIndex() {
  const db = await openDb();
  const tx = db.transaction(["meta", "blobs"]);
  const blobs = tx.objectStore("blobs");
  const [header, rows, vectors, scales, fts] = await Promise.all([
    result(tx.objectStore("meta").get("index")), result(blobs.get("rows")), result(blobs.get("vectors")),
    result(blobs.get("scales")), result(blobs.get("fts")),
  ]);
  return header && rows ? { header, rows, vectors, scales, fts } : null;
}

// One transaction: the whole index replaced at once, so a crash mid-way leaves the previous one whole.
export async function writeIndex({ header, rows, vectors, scales, fts }) {
  const db = await openDb();
  const tx = db.transaction(["meta", "blobs"], "readwrite");
  const blobs = tx.objectStore("blobs");
  blobs.put(rows, "rows");
  blobs.put(vectors, "vectors");
  blobs.put(scales, "scales");
  blobs.put(fts, "fts");
  tx.objectStore("meta").put(header, "index");
  await done(tx);
}

export async function outboxAdd(entry) {
  const db = await openDb();
  const tx = db.transaction("outbox", "readwrite");
  tx.objectStore("outbox").put(entry);
  await done(tx);
}

export async function outboxAll() {
  const db = await openDb();
  const rows = await result(db.transaction("outbox").objectStore("outbox").getAll());
  return rows.sort((a, b) => a.created - b.created);
}

export async function outboxDelete(key) {
  const db = await openDb();
  const tx = db.transaction("outbox", "readwrite");
  tx.objectStore("outbox").delete(key);
  await done(tx);
}
