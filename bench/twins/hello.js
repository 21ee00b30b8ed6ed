// The runtime's ceiling: a Worker that does nothing.
export default {
  fetch() {
    return new Response("ok");
  },
};
