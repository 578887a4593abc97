/** Starts `server` on host:port (0 picks a free port) and resolves to its URL and a close function. */
export function listen(server, port, host) {
  return new Promise((resolve) => {
    server.listen(port, host, () => {
      const { port: actual } = server.address();
      resolve({
        url: `http://${host}:${actual}`,
        port: actual,
        close: () => new Promise((done) => server.close(done)),
      });
    });
  });
}
