export { create, insert, insertMultiple, search, count } from "@orama/orama";
export { persist, restore } from "@orama/plugin-data-persistence";
