// IndexedDB of the offline web app: the catalog index (meta + one row per item with its int8 vector)
// and the feedback outbox. Used by the page (outbox) and by the search worker (index).

const NAME = "metamedia-offline";
const VERSION = 1;

let opening = null;

export function openDb() {
  if (opening) return opening;
  opening = new Promise((resolve, reject) => {
    const req = indexedDB.open(NAME, VERSION);
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains("meta")) db.createObjectStore("meta");
      if (!db.objectStoreNames.contains("items")) db.createObjectStore("items", { keyPath: "id" });
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

export async function allItems() {
  const db = await openDb();
  return result(db.transaction("items").objectStore("items").getAll());
}

// One transaction: upsert the changed rows, delete the ids no longer in the catalog, move the header
// on. A crash mid-way leaves the previous index whole.
export async function applyIndex(header, rows, keepIds) {
  const db = await openDb();
  const tx = db.transaction(["meta", "items"], "readwrite");
  const items = tx.objectStore("items");
  if (header.full) items.clear();
  for (const row of rows) items.put(row);
  if (!header.full && keepIds) {
    const keep = new Set(keepIds);
    const req = items.getAllKeys();
    req.onsuccess = () => { for (const id of req.result) if (!keep.has(id)) items.delete(id); };
  }
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
