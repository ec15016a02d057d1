import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// Relative asset URLs: the built page is served both at / and at /result/.
export default defineConfig({
  base: './',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
  },
  server: {
    // `pnpm dev` talks to a locally running gateway.
    proxy: {
      '/function': 'http://localhost:8080',
      '/socket.io': { target: 'http://localhost:8080', ws: true },
    },
  },
});
