import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// Relative asset URLs: the built dashboard is served by the gateway at /system/ui/.
export default defineConfig({
  base: './',
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true },
  server: {
    proxy: { '/socket.io': { target: 'http://localhost:8080', ws: true } },
  },
});
